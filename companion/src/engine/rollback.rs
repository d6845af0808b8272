//! Undoing a run from its journal: rows of recon.db, quarantined concept dirs,
//! and (through a transport supplied by the caller) PeerTube categories.
//! A row that changed again since the run is refused unless `force`.

use crate::context::Env;
use crate::engine::sql_to_json;
use crate::error::DbContext;
use crate::error::{Error, Result};
use crate::journal::rollback::VideoRestorer;
use crate::journal::run::Run;
use crate::journal::{self, Entry, EntryState, Kind};
use crate::recon::db as recondb;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{json, Value};

/// Columns a rollback may write, per table: journal contents are data, never SQL.
const DOCUMENT_COLUMNS: [&str; 11] = crate::engine::RESET_COLUMNS;
const CATALOGUE_COLUMNS: [&str; 1] = ["status"];

#[derive(Debug, Clone, Default, Serialize)]
pub struct RollbackSummary {
    pub target_run: String,
    pub target_command: String,
    pub dry_run: bool,
    pub forced: bool,
    pub run_id: Option<String>,
    pub report: Option<String>,
    pub rows_restored: u64,
    pub rows_already_restored: u64,
    pub dirs_restored: u64,
    pub videos_restored: u64,
    pub conflicts: Vec<String>,
    pub failed: Vec<String>,
}

fn allowed(kind: Kind) -> (&'static str, &'static [&'static str]) {
    match kind {
        Kind::Catalogue => ("catalogue", &CATALOGUE_COLUMNS),
        _ => ("documents", &DOCUMENT_COLUMNS),
    }
}

fn current(conn: &Connection, kind: Kind, key: &str, cols: &[String]) -> Result<Option<serde_json::Map<String, Value>>> {
    let (table, _) = allowed(kind);
    let sql = format!("SELECT {} FROM {table} WHERE hash = ?1", cols.join(", "));
    conn.query_row(&sql, [key], |r| {
        let mut m = serde_json::Map::new();
        for (i, c) in cols.iter().enumerate() {
            m.insert(c.clone(), sql_to_json(r.get(i)?));
        }
        Ok(m)
    })
    .optional()
    .ctx("engine::rollback::current")
}

fn json_to_sql(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Bool(b) => V::Integer(i64::from(*b)),
        Value::Number(n) => n.as_i64().map(V::Integer).unwrap_or_else(|| V::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => V::Text(s.clone()),
        other => V::Text(other.to_string()),
    }
}

/// Columns of an entry's `new` object, checked against the allow-list.
fn entry_columns(e: &Entry) -> Result<Vec<String>> {
    let (_, allow) = allowed(e.kind);
    let obj = e.new.as_object().ok_or_else(|| Error::Other(format!("journal entry {}: `new` is not an object", e.id)))?;
    obj.keys()
        .map(|k| {
            if allow.contains(&k.as_str()) {
                Ok(k.clone())
            } else {
                Err(Error::Other(format!("journal entry {}: column {k:?} may not be rolled back", e.id)))
            }
        })
        .collect()
}

/// Values equal as SQLite sees them (1 == 1.0, "1" != 1).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Rolls back `run_id`. Row changes are checked first and applied in one
/// transaction, so a refused rollback changes nothing.
pub fn rollback(env: &Env, run_id: &str, force: bool, dry_run: bool, mut videos: Option<Box<dyn VideoRestorer>>) -> Result<RollbackSummary> {
    let mut conn = if dry_run { recondb::open_readonly(&env.recon_db)? } else { recondb::open(&env.recon_db)? };
    let target = journal::get_run(&conn, run_id)?;
    let mut summary = RollbackSummary { target_run: run_id.to_string(), target_command: target.command.clone(), dry_run, forced: force, ..Default::default() };
    if target.state == "rolled_back" && !force {
        return Err(Error::Rollback { run: run_id.into(), msg: format!("already rolled back by {}", target.rolled_back_by.unwrap_or_default()) });
    }
    let entries = journal::entries(&conn, run_id)?;
    let rows: Vec<&Entry> = entries.iter().filter(|e| matches!(e.kind, Kind::Documents | Kind::Catalogue) && e.state == EntryState::Applied).collect();
    let dirs: Vec<&Entry> = entries.iter().filter(|e| e.kind == Kind::ConceptDir && matches!(e.state, EntryState::Applied | EntryState::Pending)).collect();
    let video_entries: Vec<Entry> =
        entries.iter().filter(|e| e.kind == Kind::Video && matches!(e.state, EntryState::Applied | EntryState::Pending)).cloned().collect();

    // Plan row restores: (entry, cols, already restored?).
    let mut plan = Vec::new();
    for e in rows.iter().rev() {
        let cols = entry_columns(e)?;
        let Some(cur) = current(&conn, e.kind, &e.key, &cols)? else {
            summary.conflicts.push(format!("{} {}: row no longer exists", e.kind.as_str(), e.key));
            continue;
        };
        let new = e.new.as_object().cloned().unwrap_or_default();
        let old = e.old.as_object().cloned().unwrap_or_default();
        let matches_new = cols.iter().all(|c| same(&cur[c], new.get(c).unwrap_or(&Value::Null)));
        let matches_old = cols.iter().all(|c| same(&cur[c], old.get(c).unwrap_or(&Value::Null)));
        if matches_old && !matches_new {
            summary.rows_already_restored += 1;
            continue;
        }
        if !matches_new {
            let diff: Vec<String> = cols
                .iter()
                .filter(|c| !same(&cur[c.as_str()], new.get(c.as_str()).unwrap_or(&Value::Null)))
                .map(|c| format!("{c}: run wrote {} but now {}", new.get(c).unwrap_or(&Value::Null), cur[c]))
                .collect();
            summary.conflicts.push(format!("{} {} changed since the run ({})", e.kind.as_str(), e.key, diff.join("; ")));
            if !force {
                continue;
            }
        }
        plan.push((*e, cols, Value::Object(cur)));
    }
    // Plan dir restores.
    let mut dir_plan = Vec::new();
    for e in dirs.iter().rev() {
        let src = e.old.get("path").and_then(Value::as_str).map(std::path::PathBuf::from);
        let dest = e.new.get("path").and_then(Value::as_str).map(std::path::PathBuf::from);
        let (Some(src), Some(dest)) = (src, dest) else {
            summary.failed.push(format!("concept_dir entry {}: paths missing", e.id));
            continue;
        };
        match (src.exists(), dest.exists()) {
            (false, true) => dir_plan.push((*e, src, dest)),
            (_, false) => {} // the move never happened (pending at a crash) or was undone
            (true, true) => summary.conflicts.push(format!(
                "concept dir {} exists again (RECON re-created it?); quarantined copy stays at {}",
                src.display(),
                dest.display()
            )),
        }
    }
    if !summary.conflicts.is_empty() && !force {
        return Err(Error::Rollback {
            run: run_id.into(),
            msg: format!(
                "{} change(s) were modified since the run; nothing was rolled back. Re-run with --force to overwrite them. First: {}",
                summary.conflicts.len(),
                summary.conflicts.first().cloned().unwrap_or_default()
            ),
        });
    }
    if dry_run {
        summary.rows_restored = plan.len() as u64;
        summary.dirs_restored = dir_plan.len() as u64;
        if let Some(v) = videos.as_mut() {
            if !video_entries.is_empty() {
                let r = v.restore(&video_entries, force, true)?;
                summary.videos_restored = r.restored;
                summary.conflicts.extend(r.conflicts);
                summary.failed.extend(r.failed);
            }
        } else if !video_entries.is_empty() {
            summary.failed.push(format!("{} PeerTube change(s) need a transport to roll back", video_entries.len()));
        }
        return Ok(summary);
    }

    let run = Run::begin(env, &mut conn, "rollback", json!({ "run": run_id, "force": force }))?;
    summary.run_id = Some(run.id.clone());
    // PeerTube first: if it fails, recon.db still says what PeerTube holds.
    if !video_entries.is_empty() {
        match videos.as_mut() {
            Some(v) => {
                let r = v.restore(&video_entries, force, false)?;
                for (key, old, new) in &r.changes {
                    journal::record(&conn, &run.id, Kind::Video, key, old, new, EntryState::Applied)?;
                }
                summary.videos_restored = r.restored;
                summary.conflicts.extend(r.conflicts);
                summary.failed.extend(r.failed);
            }
            None => summary.failed.push(format!("{} PeerTube change(s) not rolled back: no transport configured", video_entries.len())),
        }
    }
    for (e, src, dest) in &dir_plan {
        if let Some(parent) = src.parent() {
            std::fs::create_dir_all(parent).map_err(|err| Error::io(parent, err))?;
        }
        std::fs::rename(dest, src).map_err(|err| Error::io(dest.as_path(), err))?;
        journal::record(&conn, &run.id, Kind::ConceptDir, &e.key, &e.new, &e.old, EntryState::Applied)?;
        summary.dirs_restored += 1;
    }
    recondb::retry_busy(|| {
        let tx = recondb::write_tx(&mut conn)?;
        for (e, cols, cur) in &plan {
            let (table, _) = allowed(e.kind);
            let old = e.old.as_object().cloned().unwrap_or_default();
            let sets: Vec<String> = cols.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 2)).collect();
            let sql = format!("UPDATE {table} SET {} WHERE hash = ?1", sets.join(", "));
            let mut values: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Text(e.key.clone())];
            values.extend(cols.iter().map(|c| json_to_sql(old.get(c).unwrap_or(&Value::Null))));
            tx.execute(&sql, rusqlite::params_from_iter(values)).ctx("engine::rollback::rollback")?;
            let restored: serde_json::Map<String, Value> = cols.iter().map(|c| (c.clone(), old.get(c).cloned().unwrap_or(Value::Null))).collect();
            journal::record(&tx, &run.id, e.kind, &e.key, cur, &Value::Object(restored), EntryState::Applied)?;
        }
        journal::set_run_rolled_back(&tx, run_id, &run.id)?;
        tx.commit().ctx("engine::rollback::rollback")?;
        Ok(())
    })?;
    summary.rows_restored = plan.len() as u64;
    let outcome = if summary.failed.is_empty() { "done" } else { "failed" };
    let path = run.finish(env, &conn, outcome, &serde_json::to_value(&summary)?)?;
    summary.report = Some(path.display().to_string());
    Ok(summary)
}
