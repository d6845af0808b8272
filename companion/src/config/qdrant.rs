//! `[qdrant]` settings: where RECON's Qdrant collection is and how a run reads it (the client is `recon::qdrant`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[qdrant]` settings. The api key never comes from the config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QdrantSettings {
    /// Base URL of the REST API (RECON's `vector_db` host, port 6333).
    pub url: String,
    pub collection: String,
    /// Read from the environment or a file by the caller.
    #[serde(skip)]
    pub api_key: Option<String>,
    /// Whole-request timeout.
    #[serde(rename = "timeout_secs", with = "duration_secs")]
    pub timeout: Duration,
    /// Points per scroll page (`limit`).
    pub page_size: u32,
    /// Document hashes per `match.any` filter.
    pub hashes_per_request: usize,
    /// Scroll requests in flight at once: slices of the id space for a
    /// whole-collection read, `match.any` chunks for a filtered one (Qdrant
    /// serves each on its own thread).
    pub parallel_requests: u32,
    /// Retries of one request after its first attempt.
    pub retries: u32,
    /// First backoff delay in milliseconds (doubling, with jitter, up to 10 s).
    pub retry_base_ms: u64,
    /// Env var holding the api key (read first).
    pub api_key_env: String,
    /// File holding the api key (read when the env var is unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// How a run reads many documents' counts.
    pub strategy: Strategy,
    /// This many filtered requests failing in a row (after their retries) mean
    /// Qdrant is down: the call fails as a whole instead of marking every
    /// remaining document `needs_reprocess`.
    pub max_failed_requests_in_a_row: u32,
    /// Counts a run read answer the next runs while Qdrant proves no write
    /// reached the collection since (each shard's last operation number in
    /// `/telemetry`, unchanged; `recon::saved_counts`): the tiebreaker after
    /// a separate backfill then asks for nothing. Off: every run reads again
    /// (unless `reuse_counts_secs` opts in).
    pub reuse_unchanged_counts: bool,
    /// Opt-in, for servers that show no write marks: counts a run read stay
    /// usable by the next runs for this many seconds while the collection's
    /// point count is unchanged (0, the default: never without proof; an
    /// in-place payload rewrite keeps the point count).
    pub reuse_counts_secs: u64,
    /// Where those counts are kept (default: `{reports_dir}/qdrant-counts.json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts_file: Option<PathBuf>,
}

/// How many documents' counts are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// `filtered` when the documents fit in two filtered requests, or when
    /// `doc_hash` has a payload index and the documents hold less than
    /// `recon::qdrant::FILTERED_MAX_SHARE` of the collection's points
    /// (estimated from one `count` of a sample);
    /// otherwise `scroll_all` (each unindexed filtered request is a full
    /// payload scan on the server, and reading most of the collection is
    /// cheapest in one pass).
    #[default]
    Auto,
    /// `match.any` over `hashes_per_request` documents per paginated scroll.
    Filtered,
    /// One unfiltered scroll of the whole collection, keeping the wanted documents.
    ScrollAll,
}

impl Default for QdrantSettings {
    fn default() -> Self {
        QdrantSettings {
            url: "http://127.0.0.1:6333".into(),
            collection: "recon_knowledge_hybrid".into(),
            api_key: None,
            timeout: Duration::from_secs(60),
            page_size: 5000,
            // Measured on a real Qdrant 1.19, 2 cores, 1.5M points
            // (`--bench qdrant_source -- --real --configs`): 3 in flight
            // with 128 hashes was the fastest indexed read (2.05–2.14 s
            // against 2.5–2.7 s at 4 / 256) and as fast as 4 unindexed.
            hashes_per_request: 128,
            parallel_requests: 3,
            retries: 4,
            retry_base_ms: 250,
            api_key_env: "RECON_COMPANION_QDRANT_API_KEY".into(),
            api_key_file: None,
            strategy: Strategy::Auto,
            max_failed_requests_in_a_row: 3,
            reuse_unchanged_counts: true,
            reuse_counts_secs: 0,
            counts_file: None,
        }
    }
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}
