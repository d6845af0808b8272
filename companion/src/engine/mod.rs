//! The state-changing passes over recon.db — backfill, tiebreaker, reprocess —
//! and the status view; re-exports what the CLI, the server and explain call.

pub mod backfill;
pub mod reprocess;
pub mod rollback;
pub mod run;
pub mod status;
pub mod summary;
pub mod tiebreaker;

pub use crate::recon::db::sql_to_json;
pub use backfill::backfill;
pub use reprocess::{reprocess, ReprocessItem, ReprocessSummary, RESET_COLUMNS};
pub use run::Change;
pub use status::{status, StatusView};
pub use summary::{PassSummary, Percentages, Tally};
pub use tiebreaker::{channel_sums, decide_tie, tiebreaker, Channels, CountCache};

use crate::context::Env;
use crate::recon::concepts::DocScan;

/// Counts many documents from the configured source, never failing: a
/// source-wide error shows as each document's `failed`.
pub fn scan_with_progress(env: &Env, hashes: &[String], what: &str) -> Vec<DocScan> {
    match env.counts(hashes, what) {
        Ok(c) => c.scans,
        Err(_) => env.scan_docs(hashes),
    }
}
