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
    /// `companion_overrides` rows put back as they were (removed, mostly).
    pub overrides_restored: u64,
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

/// Row entries a rollback reads from the journal at a time, newest first:
/// its checks and writes hold one page, not the whole run (a 220K backfill's
/// rollback held 679 MB with every entry and its row in memory).
const ROW_PAGE: usize = 5000;

/// What a row entry's row holds now, against what the run wrote.
enum RowState {
    /// Still what the run wrote: to restore.
    AsWritten,
    /// Already back at the old value.
    Restored,
    /// Changed since the run (how, for the operator).
    Changed(String),
    /// The row is gone (why, for the operator).
    Gone(String),
}

/// A row entry's columns, its row's current values of them, and their state.
struct RowCheck {
    cols: Vec<String>,
    cur: serde_json::Map<String, Value>,
    state: RowState,
}

fn check_row(conn: &Connection, e: &Entry) -> Result<RowCheck> {
    let cols = entry_columns(e)?;
    let Some(cur) = current(conn, e.kind, &e.key, &cols)? else {
        let state = RowState::Gone(format!("{} {}: row no longer exists", e.kind.as_str(), e.key));
        return Ok(RowCheck { cols, cur: serde_json::Map::new(), state });
    };
    let null = Value::Null;
    let new = |c: &str| e.new.get(c).unwrap_or(&null);
    let old = |c: &str| e.old.get(c).unwrap_or(&null);
    let matches_new = cols.iter().all(|c| same(&cur[c], new(c)));
    let matches_old = cols.iter().all(|c| same(&cur[c], old(c)));
    let state = if matches_old && !matches_new {
        RowState::Restored
    } else if matches_new {
        RowState::AsWritten
    } else {
        let diff: Vec<String> =
            cols.iter().filter(|c| !same(&cur[c.as_str()], new(c))).map(|c| format!("{c}: run wrote {} but now {}", new(c), cur[c])).collect();
        RowState::Changed(format!("{} {} changed since the run ({})", e.kind.as_str(), e.key, diff.join("; ")))
    };
    Ok(RowCheck { cols, cur, state })
}

/// Puts a row's columns back to the entry's old values, journaled under `run_id`.
fn restore_row(tx: &Connection, run_id: &str, e: &Entry, check: RowCheck) -> Result<()> {
    let (table, _) = allowed(e.kind);
    let null = Value::Null;
    let old = |c: &str| e.old.get(c).unwrap_or(&null);
    let sets: Vec<String> = check.cols.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 2)).collect();
    let sql = format!("UPDATE {table} SET {} WHERE hash = ?1", sets.join(", "));
    let mut values: Vec<rusqlite::types::Value> = vec![rusqlite::types::Value::Text(e.key.clone())];
    values.extend(check.cols.iter().map(|c| json_to_sql(old(c))));
    tx.prepare_cached(&sql).ctx("engine::rollback::restore_row")?.execute(rusqlite::params_from_iter(values)).ctx("engine::rollback::restore_row")?;
    let restored: serde_json::Map<String, Value> = check.cols.iter().map(|c| (c.clone(), old(c).clone())).collect();
    journal::record(tx, run_id, e.kind, &e.key, &Value::Object(check.cur), &Value::Object(restored), EntryState::Applied)?;
    Ok(())
}

/// Visits a run's applied row entries a page at a time, newest first.
fn each_row_page(conn: &mut Connection, run_id: &str, mut visit: impl FnMut(&mut Connection, &[Entry]) -> Result<()>) -> Result<()> {
    let mut before = i64::MAX;
    loop {
        let page = journal::row_entries_before(conn, run_id, before, ROW_PAGE)?;
        let Some(last) = page.last() else { return Ok(()) };
        before = last.id;
        visit(conn, &page)?;
    }
}

/// Override entries to undo, newest first: those whose row still holds what
/// the run wrote (others are conflicts, undone only with `force`).
fn plan_overrides<'a>(conn: &Connection, entries: &[&'a Entry], force: bool, summary: &mut RollbackSummary) -> Result<Vec<&'a Entry>> {
    let mut plan = Vec::new();
    for e in entries.iter().rev() {
        let cur = recondb::get_override(conn, &e.key)?.map(serde_json::to_value).transpose()?.unwrap_or(Value::Null);
        if cur == e.old && cur != e.new {
            summary.rows_already_restored += 1;
            continue;
        }
        if cur != e.new {
            summary.conflicts.push(format!("override of video {} changed since the run", e.key));
            if !force {
                continue;
            }
        }
        plan.push(*e);
    }
    Ok(plan)
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
    let entries = journal::entries_except_rows(&conn, run_id)?;
    let dirs: Vec<&Entry> = entries.iter().filter(|e| e.kind == Kind::ConceptDir && matches!(e.state, EntryState::Applied | EntryState::Pending)).collect();
    let video_entries: Vec<Entry> =
        entries.iter().filter(|e| e.kind == Kind::Video && matches!(e.state, EntryState::Applied | EntryState::Pending)).cloned().collect();
    let override_entries: Vec<&Entry> = entries.iter().filter(|e| e.kind == Kind::Override && e.state == EntryState::Applied).collect();
    let override_plan = plan_overrides(&conn, &override_entries, force, &mut summary)?;

    // Every row checked before anything is written: a refused rollback changes nothing.
    let mut to_restore = 0u64;
    each_row_page(&mut conn, run_id, |conn, page| {
        for e in page {
            match check_row(conn, e)?.state {
                // Counted by the writes below, which see them again (a dry run has none).
                RowState::Restored => summary.rows_already_restored += u64::from(dry_run),
                RowState::AsWritten => to_restore += 1,
                RowState::Changed(why) => {
                    summary.conflicts.push(why);
                    to_restore += u64::from(force);
                }
                RowState::Gone(why) => summary.conflicts.push(why),
            }
        }
        Ok(())
    })?;

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
        summary.rows_restored = to_restore;
        summary.dirs_restored = dir_plan.len() as u64;
        summary.overrides_restored = override_plan.len() as u64;
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
    // Rows in paced transactions (RECON's writers get in between), each
    // checked again as it is written: one changed since the check above is
    // left as it is (overwritten with `force`). A rollback stopped half-way
    // is finished by running it again: restored rows count as restored.
    let mut late: Vec<String> = Vec::new();
    let rollback_id = run.id.clone();
    each_row_page(&mut conn, run_id, |conn, page| {
        let [restored, meanwhile, _] = recondb::write_paced(conn, page, "engine::rollback::rows", |tx, e, n| {
            let check = check_row(tx, e)?;
            match &check.state {
                RowState::AsWritten => {}
                RowState::Changed(_) if force => {}
                RowState::Restored => {
                    n[1] += 1;
                    return Ok(());
                }
                RowState::Changed(why) | RowState::Gone(why) => {
                    late.push(why.clone());
                    return Ok(());
                }
            }
            restore_row(tx, &rollback_id, e, check)?;
            n[0] += 1;
            Ok(())
        })?;
        summary.rows_restored += restored;
        summary.rows_already_restored += meanwhile;
        Ok(())
    })?;
    // A transaction retried after a busy database checks its rows twice.
    late.sort();
    late.dedup();
    let finished = force || late.is_empty();
    if force {
        summary.conflicts.extend(late);
        summary.conflicts.sort();
        summary.conflicts.dedup();
    } else {
        summary
            .failed
            .extend(late.into_iter().map(|why| format!("{why} during the rollback: left as it is; run the rollback again with --force to overwrite it")));
    }
    recondb::retry_busy(|| {
        let tx = recondb::write_tx(&mut conn)?;
        for e in &override_plan {
            let cur = recondb::get_override(&tx, &e.key)?.map(serde_json::to_value).transpose()?.unwrap_or(Value::Null);
            match serde_json::from_value::<recondb::Override>(e.old.clone()) {
                Ok(o) => recondb::put_override(&tx, &o)?,
                Err(_) => {
                    recondb::delete_override(&tx, &e.key)?;
                }
            }
            journal::record(&tx, &run.id, Kind::Override, &e.key, &cur, &e.old, EntryState::Applied)?;
        }
        if finished {
            journal::set_run_rolled_back(&tx, run_id, &run.id)?;
        }
        tx.commit().ctx("engine::rollback::rollback")?;
        Ok(())
    })?;
    summary.overrides_restored = override_plan.len() as u64;
    let outcome = if summary.failed.is_empty() { "done" } else { "failed" };
    let path = run.finish(env, &conn, outcome, &serde_json::to_value(&summary)?)?;
    summary.report = Some(path.display().to_string());
    Ok(summary)
}
