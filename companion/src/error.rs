//! The companion's one error type; `anyhow` appears only in `main.rs`.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("recon db {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("sqlite: {0}")]
    Db(#[from] rusqlite::Error),

    #[error("recon db is not migrated: {0} (run `recon-companion migrate`)")]
    NotMigrated(String),

    #[error("another run holds the writer lock: {0}")]
    Locked(String),

    #[error("invalid document hash {0:?}: expected 32 lowercase hex characters")]
    BadHash(String),

    /// An `explain` target that is not a hash, a video uuid or a `/w/` URL.
    #[error("{0}")]
    BadTarget(String),

    #[error("unknown domain {0:?}: expected one of the 18 labels, slugs or ids 100-117")]
    BadDomain(String),

    #[error("not found: {0}")]
    NotFound(String),

    #[error("rollback of run {run}: {msg}")]
    Rollback { run: String, msg: String },

    #[error("refused: {0}")]
    Refused(String),

    #[error("peertube: {0}")]
    PeerTube(String),

    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),

    /// A Qdrant request that failed; `op` says what the companion was doing.
    #[error("qdrant at {url}: {op}: {msg}")]
    Qdrant { op: String, url: String, msg: String },

    #[error("qdrant collection {collection:?} not found at {url}")]
    QdrantCollectionMissing { collection: String, url: String },

    #[error("http: {0}")]
    Http(#[from] reqwest::Error),

    #[error("json: {0}")]
    Json(#[from] serde_json::Error),

    #[error("{0}")]
    Other(String),

    /// A request body over the service's limit (`server.max_body_bytes`).
    #[error("request body too large: {0}")]
    TooLarge(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Exit code for the CLI: 2 for usage/config problems, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::BadHash(_) | Error::BadTarget(_) | Error::BadDomain(_) => 2,
            _ => 1,
        }
    }
}
