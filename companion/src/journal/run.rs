//! The guard of a state-changing run: the writer lock, the run row, and the report written when it ends.

use super::lock::WriterLock;
use super::report;
use crate::context::Env;
use crate::error::Result;
use crate::journal;
use crate::recon::db as recondb;
use rusqlite::Connection;
use serde_json::Value;
use std::path::PathBuf;

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
