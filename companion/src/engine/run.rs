//! A state-changing run: the writer lock, the run row, the report, and the compare-and-set writes of outcomes.

use super::summary::PassSummary;
use crate::assign::Outcome;
use crate::context::Env;
use crate::error::Result;
use crate::journal::batch::{DomainWrite, Guard};
use crate::journal::{self, run::Run};
use crate::recon::db as recondb;
use rusqlite::Connection;
use serde_json::{json, Value};

/// A change the engine wants to make to one document's domain columns.
pub struct Change {
    pub hash: String,
    pub outcome: Outcome,
    /// The documents rowid the selection read, if it did (`DomainWrite::doc`).
    pub doc: Option<i64>,
}

/// A dry run reads through a read-only connection and starts no run; a real
/// one takes the lock, migrates and records the run.
pub fn open_for(env: &Env, command: &str, limit: Option<u64>, dry_run: bool) -> Result<(Connection, Option<Run>)> {
    if dry_run {
        return Ok((recondb::open_readonly(&env.recon_db)?, None));
    }
    let mut conn = recondb::open(&env.recon_db)?;
    let run = Run::begin(env, &mut conn, command, json!({ "limit": limit }))?;
    Ok((conn, Some(run)))
}

/// Writes outcomes set-based in paced transactions (`journal::batch`), each
/// row compare-and-set by `guard` against what it holds now, journaled with
/// old and new values.
pub fn write_outcomes(conn: &mut Connection, run_id: &str, changes: &[Change], guard: Guard, summary: &mut PassSummary) -> Result<()> {
    let writes: Vec<DomainWrite<'_>> =
        changes.iter().map(|ch| DomainWrite { hash: &ch.hash, domain: ch.outcome.domain_label(), status: ch.outcome.status.as_str(), doc: ch.doc }).collect();
    let w = journal::batch::write_domains(conn, run_id, &writes, guard)?;
    summary.written += w.written;
    summary.unchanged += w.unchanged;
    summary.changed_concurrently += w.conflicts;
    Ok(())
}

/// Ends a pass whose concept source failed as a whole (Qdrant unreachable,
/// collection missing, an outage mid-run): nothing of the run is written, the
/// run row and its report say why, and the error goes back to the caller. A
/// rerun selects the same rows again.
pub fn abort_pass(
    env: &Env,
    conn: &Connection,
    run: Option<Run>,
    summary: &mut PassSummary,
    err: crate::error::Error,
    started: std::time::Instant,
) -> crate::error::Error {
    summary.aborted = Some(err.to_string());
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    if let Some(run) = run {
        summary.run_id = Some(run.id.clone());
        let counts = serde_json::to_value(&*summary).unwrap_or(Value::Null);
        if let Some(p) = run.finish_failed(env, conn, &counts) {
            summary.report = Some(p.display().to_string());
            tracing::error!(run = %run.id, report = %p.display(), error = %err, "run aborted: nothing written");
        }
    }
    err
}

/// Writes a pass's changes (real runs only) and finishes the run with its report.
pub fn finish_pass(
    env: &Env,
    conn: &mut Connection,
    run: Option<Run>,
    changes: &[Change],
    guard: Guard,
    summary: &mut PassSummary,
    started: std::time::Instant,
) -> Result<()> {
    if let Some(run) = run {
        summary.run_id = Some(run.id.clone());
        let res = write_outcomes(conn, &run.id, changes, guard, summary);
        summary.elapsed_ms = started.elapsed().as_millis() as u64;
        let outcome = if res.is_ok() { "done" } else { "failed" };
        let path = run.finish(env, conn, outcome, &serde_json::to_value(&*summary)?)?;
        summary.report = Some(path.display().to_string());
        res?;
    }
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(())
}
