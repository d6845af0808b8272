//! The companion's one error type; `anyhow` appears only in `main.rs`.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

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

    /// A recon.db statement that failed, with what the companion was doing
    /// (`op`), on which row or run (`key`: a hash or run id) and which file.
    /// Built by [`DbContext`]; a bare `?` on a rusqlite error leaves `op` empty
    /// and says "operation not recorded".
    #[error("{}", DbMessage::of(.op, .key, .path, .source))]
    Db {
        op: Cow<'static, str>,
        key: Option<String>,
        path: Option<PathBuf>,
        /// Boxed: keeps `Error` small, as every `Result` in the crate carries it.
        #[source]
        source: Box<rusqlite::Error>,
    },

    #[error("recon db is not migrated: {0} (run `recon-companion migrate`)")]
    NotMigrated(String),

    #[error("another run holds the writer lock: {0}")]
    Locked(String),

    /// A hash that is not one safe path component (`recon::hash`): never used as a path.
    #[error("invalid document hash {0:?}: expected 1 to 128 ASCII letters and digits (no separators, dots, NUL, whitespace; case kept)")]
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

/// "recon db /x/recon.db: reading documents row 0123…: database is locked".
struct DbMessage<'a> {
    op: &'a str,
    key: Option<&'a str>,
    path: Option<&'a Path>,
    source: &'a rusqlite::Error,
}

impl<'a> DbMessage<'a> {
    fn of(op: &'a str, key: &'a Option<String>, path: &'a Option<PathBuf>, source: &'a rusqlite::Error) -> Self {
        DbMessage { op, key: key.as_deref(), path: path.as_deref(), source }
    }
}

impl fmt::Display for DbMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op.is_empty() && self.key.is_none() && self.path.is_none() {
            return write!(f, "sqlite (operation not recorded): {}", self.source);
        }
        f.write_str("recon db")?;
        // An in-memory or temporary database has an empty path.
        if let Some(p) = self.path.filter(|p| !p.as_os_str().is_empty()) {
            write!(f, " {}", p.display())?;
        }
        if !self.op.is_empty() {
            write!(f, ": {}", self.op)?;
        }
        if let Some(k) = self.key {
            write!(f, " {k}")?;
        }
        write!(f, ": {}", self.source)
    }
}

/// Says what a recon.db call was doing when it failed, so call sites stay one
/// line: `stmt.query_row(..).ctx_key("reading documents row", hash)?`.
pub trait DbContext<T> {
    /// `op`: what was being done, e.g. "listing tied_manual documents".
    fn ctx(self, op: impl Into<Cow<'static, str>>) -> Result<T>;
    /// … on one row or run (`key`: a document hash or a run id).
    fn ctx_key(self, op: impl Into<Cow<'static, str>>, key: &str) -> Result<T>;
    /// … on `conn`'s database, so the message names the file too.
    fn ctx_in(self, conn: &rusqlite::Connection, op: impl Into<Cow<'static, str>>, key: Option<&str>) -> Result<T>;
}

impl<T> DbContext<T> for std::result::Result<T, rusqlite::Error> {
    fn ctx(self, op: impl Into<Cow<'static, str>>) -> Result<T> {
        self.map_err(|source| Error::Db { op: op.into(), key: None, path: None, source: Box::new(source) })
    }
    fn ctx_key(self, op: impl Into<Cow<'static, str>>, key: &str) -> Result<T> {
        self.map_err(|source| Error::Db { op: op.into(), key: Some(key.to_string()), path: None, source: Box::new(source) })
    }
    fn ctx_in(self, conn: &rusqlite::Connection, op: impl Into<Cow<'static, str>>, key: Option<&str>) -> Result<T> {
        self.map_err(|source| Error::Db { op: op.into(), key: key.map(str::to_string), path: conn.path().map(PathBuf::from), source: Box::new(source) })
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Whether this is SQLite's "busy" or "locked" (worth retrying).
    pub fn is_busy(&self) -> bool {
        let source = match self {
            Error::Db { source, .. } => source.as_ref(),
            Error::Sqlite { source, .. } => source,
            _ => return false,
        };
        matches!(source, rusqlite::Error::SqliteFailure(e, _) if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    }

    /// Names the database file of a [`Error::Db`] that does not name one yet.
    pub fn in_db(self, db: &Path) -> Error {
        match self {
            Error::Db { op, key, path: None, source } => Error::Db { op, key, path: Some(db.to_path_buf()), source },
            other => other,
        }
    }

    /// Exit code for the CLI: 2 for usage/config problems, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::BadHash(_) | Error::BadTarget(_) | Error::BadDomain(_) => 2,
            _ => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_errors_say_what_was_being_done() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let fail = || conn.query_row("SELECT nope FROM documents", [], |r| r.get::<_, String>(0));
        let e = fail().ctx_key("reading documents row", "0123").unwrap_err().in_db(Path::new("/x/recon.db"));
        assert!(e.to_string().starts_with("recon db /x/recon.db: reading documents row 0123: "), "{e}");
        // An in-memory database has no file to name.
        let e = fail().ctx_in(&conn, "reading documents row", Some("0123")).unwrap_err();
        assert!(e.to_string().starts_with("recon db: reading documents row 0123: "), "{e}");
        assert!(!e.is_busy());
    }
}
