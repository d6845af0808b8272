//! The state-changing passes over recon.db — backfill, tiebreaker, reprocess —
//! and the status view; re-exports what the CLI, the server and explain call.

pub mod backfill;
pub mod journal;
pub mod lock;
pub mod report;
pub mod reprocess;
pub mod rollback;
pub mod run;
pub mod status;
pub mod summary;
pub mod tiebreaker;

pub use crate::recon::db::sql_to_json;
pub use backfill::backfill;
pub use reprocess::{reprocess, ReprocessItem, ReprocessSummary, RESET_COLUMNS};
pub use run::{Change, Run};
pub use status::{status, StatusView};
pub use summary::{PassSummary, Percentages, Tally};
pub use tiebreaker::{channel_sums, decide_tie, tiebreaker, Channels, CountCache};

use crate::context::Env;
use crate::recon::concepts::{self, DocScan};
use crate::support::progress::progress_bar;

/// Scans many documents in parallel, in chunks so the progress bar moves.
pub fn scan_with_progress(env: &Env, hashes: &[String], what: &str) -> Vec<DocScan> {
    let pb = progress_bar(env.progress, hashes.len() as u64, what);
    let mut out = Vec::with_capacity(hashes.len());
    for chunk in hashes.chunks(2048) {
        out.extend(concepts::scan_docs(&env.concepts_dir, chunk));
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    out
}
