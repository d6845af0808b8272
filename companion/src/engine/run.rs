//! A state-changing run: the writer lock, the run row, the report, and the compare-and-set writes of outcomes.

use super::journal;
use super::lock::WriterLock;
use super::report;
use super::summary::PassSummary;
use crate::assign::Outcome;
use crate::context::Env;
use crate::error::DbContext;
use crate::error::Result;
use crate::recon::db::{self as recondb, DomainColumns};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Rows written per transaction: short enough that RECON's writers (busy
/// timeout 5 s) never wait long, large enough to avoid per-row commits.
pub const WRITE_BATCH: usize = 1000;

/// A change the engine wants to make to one document's domain columns.
pub struct Change {
    pub hash: String,
    pub outcome: Outcome,
}

/// Guard for a state-changing run: lock, run row, report on finish.
pub struct Run {
    pub id: String,
    pub command: String,
    pub args: Value,
    pub(crate) started_at: String,
    _lock: WriterLock,
}

impl Run {
    /// Takes the writer lock, applies the migration if needed and records the run.
    pub fn begin(env: &Env, conn: &mut Connection, command: &str, args: Value) -> Result<Run> {
        let lock = WriterLock::acquire(&env.recon_db, &format!("recon-companion {command}"))?;
        let applied = recondb::ensure_migrated(conn)?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migration");
        }
        let id = recondb::retry_busy(|| journal::start_run(conn, command, &args))?;
        Ok(Run { id, command: command.to_string(), args, started_at: recondb::now(), _lock: lock })
    }

    /// Records the end of the run and writes its report.
    pub fn finish(self, env: &Env, conn: &Connection, outcome: &str, counts: &Value) -> Result<PathBuf> {
        let rep = self.report(outcome, counts);
        let path = report::write(&env.reports_dir, &rep)?;
        let p = path.display().to_string();
        recondb::retry_busy(|| journal::finish_run(conn, &self.id, outcome, counts, Some(&p)))?;
        Ok(path)
    }

    /// Best effort after a failure: the report and the run row say "failed",
    /// and an error writing them must not hide the error that ended the run.
    pub fn finish_failed(&self, env: &Env, conn: &Connection, counts: &Value) -> Option<PathBuf> {
        let rep = self.report("failed", counts);
        let path = report::write(&env.reports_dir, &rep).ok();
        let p = path.as_ref().map(|p| p.display().to_string());
        let _ = journal::finish_run(conn, &self.id, "failed", counts, p.as_deref());
        path
    }

    fn report(&self, outcome: &str, counts: &Value) -> report::Report {
        report::Report {
            run_id: self.id.clone(),
            command: self.command.clone(),
            arguments: self.args.clone(),
            dry_run: false,
            started_at: self.started_at.clone(),
            finished_at: recondb::now(),
            outcome: outcome.to_string(),
            counts: counts.clone(),
        }
    }
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

/// Writes outcomes in short transactions, each row compare-and-set against what
/// the selection saw (`guard`), journaled with old and new values.
pub fn write_outcomes(
    conn: &mut Connection,
    run_id: &str,
    changes: &[Change],
    guard: impl Fn(&DomainColumns) -> bool,
    summary: &mut PassSummary,
) -> Result<()> {
    for batch in changes.chunks(WRITE_BATCH) {
        let (written, unchanged, conflicts) = recondb::retry_busy(|| {
            let tx = recondb::write_tx(conn)?;
            let (mut w, mut u, mut c) = (0u64, 0u64, 0u64);
            {
                let now = recondb::now();
                for ch in batch {
                    let Some(cur) = recondb::domain_columns(&tx, &ch.hash)? else {
                        c += 1;
                        continue;
                    };
                    if !guard(&cur) {
                        c += 1;
                        continue;
                    }
                    let new_domain = ch.outcome.domain_label().map(str::to_string);
                    let new_status = Some(ch.outcome.status.as_str().to_string());
                    if cur.recon_domain == new_domain && cur.recon_domain_status == new_status {
                        u += 1;
                        continue;
                    }
                    let new = DomainColumns {
                        recon_domain: new_domain,
                        recon_domain_status: new_status,
                        recon_domain_assigned_at: Some(now.clone()),
                        peertube_category_pushed_at: cur.peertube_category_pushed_at.clone(),
                    };
                    journal::write_domain_columns(&tx, run_id, &ch.hash, &cur, &new)?;
                    w += 1;
                }
            }
            tx.commit().ctx("engine::run::write_outcomes")?;
            Ok((w, u, c))
        })?;
        summary.written += written;
        summary.unchanged += unchanged;
        summary.changed_concurrently += conflicts;
    }
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
    guard: impl Fn(&DomainColumns) -> bool,
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
