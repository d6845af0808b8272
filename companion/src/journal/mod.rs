//! Runs and their journal: every state-changing run gets an id, and every row,
//! directory or PeerTube video it changes is recorded with old and new values in
//! `companion_runs` / `companion_journal` — in the same transaction as the change
//! itself, so a run killed at any point leaves journal and data in agreement.
//! A run whose process died is marked `interrupted` by the next run to start.

pub mod batch;
pub mod lock;
mod read;
pub mod report;
pub mod rollback;
pub mod run;

pub use read::*;

use crate::error::DbContext;
use crate::error::{Error, Result};
use crate::recon::db::{now, set_domain_columns, DomainColumns};
use rand::Rng;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a journal entry changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A `documents` row of recon.db (old/new: column → value).
    Documents,
    /// A `catalogue` row of recon.db (old/new: column → value).
    Catalogue,
    /// A concept dir moved into quarantine (old: {path}, new: {path, files}).
    ConceptDir,
    /// A PeerTube video's category (old/new: {category, transport}).
    Video,
    /// A `companion_overrides` row, keyed by video uuid (old/new: the row, or null for none).
    Override,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Documents => "documents",
            Kind::Catalogue => "catalogue",
            Kind::ConceptDir => "concept_dir",
            Kind::Video => "video",
            Kind::Override => "override",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Documents, Kind::Catalogue, Kind::ConceptDir, Kind::Video, Kind::Override].into_iter().find(|k| k.as_str() == s)
    }
}

/// State of one journal entry. External writes (PeerTube, directory moves) are
/// journaled `pending` *before* they happen, so a crash in between is visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    Applied,
    Pending,
    Failed,
    RolledBack,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Applied => "applied",
            EntryState::Pending => "pending",
            EntryState::Failed => "failed",
            EntryState::RolledBack => "rolled_back",
        }
    }
    pub fn parse(s: &str) -> Option<EntryState> {
        [EntryState::Applied, EntryState::Pending, EntryState::Failed, EntryState::RolledBack].into_iter().find(|k| k.as_str() == s)
    }
}

/// A run's row in `companion_runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub run_id: String,
    pub command: String,
    pub args: Value,
    pub state: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub summary: Option<Value>,
    pub report_path: Option<String>,
    pub rolled_back_by: Option<String>,
    pub changes: i64,
}

/// One journal entry.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub run_id: String,
    pub kind: Kind,
    pub key: String,
    pub old: Value,
    pub new: Value,
    pub state: EntryState,
    pub at: String,
    pub note: Option<String>,
}

/// A new run id: sortable UTC time, the command, and a random suffix.
pub fn new_run_id(command: &str) -> String {
    let suffix: u32 = rand::thread_rng().gen();
    let cmd: String = command.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("{}-{}-{:08x}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"), cmd, suffix)
}

/// State of a run whose process died before finishing it.
pub const INTERRUPTED: &str = "interrupted";

/// Records the start of a run (state `running`). The caller holds the writer
/// lock, so any other run still `running` lost its holder: it is marked
/// `interrupted` first.
pub fn start_run(conn: &Connection, command: &str, args: &Value) -> Result<String> {
    let dead = mark_interrupted(conn)?;
    if !dead.is_empty() {
        tracing::warn!(runs = ?dead, "marked runs interrupted: their process died while holding the writer lock");
    }
    // Ids are readable (second + command + random suffix), so two runs of one
    // second can draw the same one (the dashboard starts many): the insert
    // skips a taken id and another suffix is drawn.
    let insert = |run_id: &str| {
        conn.execute(
            "INSERT INTO companion_runs(run_id, command, args, state, started_at, pid) VALUES (?1, ?2, ?3, 'running', ?4, ?5) ON CONFLICT(run_id) DO NOTHING",
            params![run_id, command, args.to_string(), now(), i64::from(std::process::id())],
        )
        .ctx("engine::journal::start_run")
    };
    let mut run_id = new_run_id(command);
    while insert(&run_id)? == 0 {
        run_id = new_run_id(command);
    }
    Ok(run_id)
}

/// Records the end of a run. Interrupted runs still without a report get one,
/// written from their journal beside this run's report.
pub fn finish_run(conn: &Connection, run_id: &str, state: &str, summary: &Value, report_path: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE companion_runs SET state = ?2, finished_at = ?3, summary = ?4, report_path = ?5 WHERE run_id = ?1",
        params![run_id, state, now(), summary.to_string(), report_path],
    )
    .ctx("engine::journal::finish_run")?;
    if let Some(dir) = report_path.and_then(|p| std::path::Path::new(p).parent()) {
        // The run itself is done: a failing report for an older run must not fail it.
        if let Err(e) = write_interrupted_reports(conn, dir) {
            tracing::warn!(error = %e, "could not write the report of an interrupted run");
        }
    }
    Ok(())
}

/// Marks every `running` run `interrupted` (only call while holding the writer
/// lock: then none of them can still be alive). Returns their ids.
pub fn mark_interrupted(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT run_id, pid FROM companion_runs WHERE state = 'running' ORDER BY started_at").ctx("engine::journal::mark_interrupted")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)))
        .ctx("engine::journal::mark_interrupted")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("engine::journal::mark_interrupted")?;
    let at = now();
    for (id, pid) in &rows {
        let counts = entry_counts(conn, id)?;
        let summary = serde_json::json!({
            "interrupted": true,
            "reason": format!("the process (pid {}) died before finishing the run; found by the next run to take the writer lock", pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into())),
            "journal": counts,
        });
        conn.execute(
            "UPDATE companion_runs SET state = ?2, finished_at = ?3, summary = ?4 WHERE run_id = ?1 AND state = 'running'",
            params![id, INTERRUPTED, at, summary.to_string()],
        )
        .ctx("engine::journal::mark_interrupted")?;
    }
    Ok(rows.into_iter().map(|(id, _)| id).collect())
}

/// A run's journal entries counted by kind and state (`{"documents": {"applied": 3}}`).
pub fn entry_counts(conn: &Connection, run_id: &str) -> Result<Value> {
    let mut stmt = conn
        .prepare("SELECT kind, state, count(*) FROM companion_journal WHERE run_id = ?1 GROUP BY kind, state ORDER BY kind, state")
        .ctx("engine::journal::entry_counts")?;
    let rows = stmt
        .query_map([run_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))
        .ctx("engine::journal::entry_counts")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("engine::journal::entry_counts")?;
    let mut out = Map::new();
    for (kind, state, n) in rows {
        if let Value::Object(m) = out.entry(kind).or_insert_with(|| Value::Object(Map::new())) {
            m.insert(state, Value::from(n));
        }
    }
    Ok(Value::Object(out))
}

/// Writes a report for each interrupted run that has none, from its journal
/// (what it had done before it died), into `dir`. Returns the paths.
pub fn write_interrupted_reports(conn: &Connection, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let ids: Vec<String> = conn
        .prepare("SELECT run_id FROM companion_runs WHERE state = ?1 AND report_path IS NULL ORDER BY started_at")
        .ctx("engine::journal::write_interrupted_reports")?
        .query_map([INTERRUPTED], |r| r.get(0))
        .ctx("engine::journal::write_interrupted_reports")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("engine::journal::write_interrupted_reports")?;
    let mut paths = Vec::new();
    for id in ids {
        let run = get_run(conn, &id)?;
        let rep = crate::journal::report::interrupted(&run, entry_counts(conn, &id)?);
        let path = crate::journal::report::write(dir, &rep)?;
        conn.execute("UPDATE companion_runs SET report_path = ?2 WHERE run_id = ?1", params![id, path.display().to_string()])
            .ctx("engine::journal::write_interrupted_reports")?;
        paths.push(path);
    }
    Ok(paths)
}

/// Writes one document's domain columns and journals their old and new values
/// (`applied`) in the same transaction: what makes the change undoable. The
/// engine's passes and the service's writes both go through here.
pub fn write_domain_columns(tx: &Connection, run_id: &str, hash: &str, cur: &DomainColumns, new: &DomainColumns) -> Result<()> {
    set_domain_columns(tx, hash, new)?;
    record(tx, run_id, Kind::Documents, hash, &serde_json::to_value(cur)?, &serde_json::to_value(new)?, EntryState::Applied)?;
    Ok(())
}

/// Appends an entry; call inside the transaction that makes the change.
pub fn record(conn: &Connection, run_id: &str, kind: Kind, key: &str, old: &Value, new: &Value, state: EntryState) -> Result<i64> {
    // Cached: a backfill or push writes thousands of entries per run.
    conn.prepare_cached("INSERT INTO companion_journal(run_id, kind, key, old, new, state, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
        .ctx("engine::journal::record")?
        .execute(params![run_id, kind.as_str(), key, old.to_string(), new.to_string(), state.as_str(), now()])
        .ctx("engine::journal::record")?;
    Ok(conn.last_insert_rowid())
}

/// Moves an entry to a new state (e.g. pending → applied once PeerTube said 204).
pub fn set_state(conn: &Connection, id: i64, state: EntryState, note: Option<&str>) -> Result<()> {
    conn.prepare_cached("UPDATE companion_journal SET state = ?2, note = COALESCE(?3, note), at = ?4 WHERE id = ?1")
        .ctx("engine::journal::set_state")?
        .execute(params![id, state.as_str(), note, now()])
        .ctx("engine::journal::set_state")?;
    Ok(())
}

/// Replaces an entry's `new` value (a push learns the real "before" only from PeerTube).
pub fn set_values(conn: &Connection, id: i64, old: &Value, new: &Value) -> Result<()> {
    conn.execute("UPDATE companion_journal SET old = ?2, new = ?3 WHERE id = ?1", params![id, old.to_string(), new.to_string()])
        .ctx("engine::journal::set_values")?;
    Ok(())
}

fn parse_json(s: Option<String>) -> Value {
    s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null)
}

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        run_id: r.get(0)?,
        command: r.get(1)?,
        args: parse_json(r.get(2)?),
        state: r.get(3)?,
        started_at: r.get(4)?,
        finished_at: r.get(5)?,
        summary: r.get::<_, Option<String>>(6)?.map(|s| parse_json(Some(s))),
        report_path: r.get(7)?,
        rolled_back_by: r.get(8)?,
        changes: r.get(9)?,
    })
}

const RUN_COLUMNS: &str = "r.run_id, r.command, r.args, r.state, r.started_at, r.finished_at, r.summary,
     r.report_path, r.rolled_back_by,
     (SELECT count(*) FROM companion_journal j WHERE j.run_id = r.run_id)";

/// Runs, newest first.
pub fn list_runs(conn: &Connection, limit: u64) -> Result<Vec<RunRow>> {
    let mut stmt = conn
        .prepare(&format!("SELECT {RUN_COLUMNS} FROM companion_runs r ORDER BY r.started_at DESC, r.rowid DESC LIMIT ?1"))
        .ctx("engine::journal::list_runs")?;
    let rows =
        stmt.query_map([limit as i64], run_from_row).ctx("engine::journal::list_runs")?.collect::<Result<Vec<_>, _>>().ctx("engine::journal::list_runs")?;
    Ok(rows)
}

pub fn get_run(conn: &Connection, run_id: &str) -> Result<RunRow> {
    conn.query_row(&format!("SELECT {RUN_COLUMNS} FROM companion_runs r WHERE r.run_id = ?1"), [run_id], run_from_row)
        .optional()
        .ctx("engine::journal::get_run")?
        .ok_or_else(|| Error::NotFound(format!("run {run_id} (see `recon-companion runs`)")))
}

pub fn set_run_rolled_back(conn: &Connection, run_id: &str, by: &str) -> Result<()> {
    conn.execute("UPDATE companion_runs SET state = 'rolled_back', rolled_back_by = ?2 WHERE run_id = ?1", params![run_id, by])
        .ctx("engine::journal::set_run_rolled_back")?;
    Ok(())
}

/// Builds a column → value JSON object.
pub fn columns_json(pairs: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_string(), v.clone());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch(
            "CREATE TABLE companion_runs (run_id TEXT PRIMARY KEY, command TEXT NOT NULL, args TEXT NOT NULL, state TEXT NOT NULL,
                 started_at TEXT NOT NULL, finished_at TEXT, summary TEXT, report_path TEXT, rolled_back_by TEXT, pid INTEGER);
             CREATE TABLE companion_journal (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
                 old TEXT, new TEXT, state TEXT NOT NULL, at TEXT NOT NULL, note TEXT);",
        )
        .expect("schema");
        c
    }

    #[test]
    fn a_dead_run_is_marked_interrupted_by_the_next_and_gets_a_report() {
        let c = conn();
        let dead = start_run(&c, "push", &serde_json::json!({"limit": 5})).expect("start");
        record(&c, &dead, Kind::Video, "v1", &serde_json::json!({"category": 1}), &serde_json::json!({"category": 101}), EntryState::Applied).expect("rec");
        record(&c, &dead, Kind::Video, "v2", &serde_json::json!({"category": 1}), &serde_json::json!({"category": 102}), EntryState::Pending).expect("rec");
        // The process dies here; the next run (holding the lock) starts.
        let next = start_run(&c, "backfill", &serde_json::json!({})).expect("start");
        let row = get_run(&c, &dead).expect("row");
        assert_eq!(row.state, INTERRUPTED);
        assert!(row.finished_at.is_some());
        assert_eq!(row.summary.as_ref().expect("summary")["journal"]["video"]["pending"], 1);
        assert_eq!(get_run(&c, &next).expect("row").state, "running");
        assert!(row.report_path.is_none(), "written when the next run finishes");

        let dir = tempfile::tempdir().expect("tempdir");
        let report = dir.path().join(format!("{next}.json"));
        finish_run(&c, &next, "done", &serde_json::json!({}), Some(&report.display().to_string())).expect("finish");
        let row = get_run(&c, &dead).expect("row");
        let path = std::path::PathBuf::from(row.report_path.expect("report written"));
        assert_eq!(path.parent(), Some(dir.path()));
        let body = crate::journal::report::read_verified(&path).expect("verified");
        assert_eq!(body["outcome"], INTERRUPTED);
        assert_eq!(body["counts"]["journal"]["video"]["applied"], 1);
        assert_eq!(get_run(&c, &next).expect("row").state, "done", "the finished run is not touched");
        // Nothing left to mark.
        assert!(mark_interrupted(&c).expect("mark").is_empty());
    }
}
