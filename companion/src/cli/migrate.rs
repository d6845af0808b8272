//! `migrate`: add the feature's columns and index to recon.db, check them, or
//! revert them (after exporting the journal).

use super::Ctx;
use crate::error::DbContext;
use crate::error::{Error, Result};
use crate::journal;
use crate::output;
use crate::recon::db as recondb;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn migrate(ctx: &Ctx, check: bool) -> Result<i32> {
    if check {
        let conn = recondb::open_readonly(&ctx.env.recon_db)?;
        let st = recondb::migration_state(&conn)?;
        if ctx.json {
            output::print_json(&json!({ "ok": st.ok(), "state": st }))?;
        } else {
            let mut rows = Vec::new();
            for c in recondb::FEATURE_COLUMNS {
                let ok = !st.missing_feature_columns.iter().any(|m| m == c);
                rows.push(vec![format!("documents.{c}"), if ok { "ok" } else { "MISSING" }.to_string()]);
            }
            rows.push(vec![recondb::FEATURE_INDEX.to_string(), if st.index_present { "ok" } else { "MISSING" }.into()]);
            rows.push(vec!["companion_* tables".into(), if st.companion_tables { "ok" } else { "MISSING" }.into()]);
            rows.push(vec!["companion_journal.doc and its indexes".into(), if st.journal_layout { "ok" } else { "MISSING" }.into()]);
            rows.push(vec![
                "RECON's own columns".into(),
                if st.missing_recon_columns.is_empty() { "ok".into() } else { format!("MISSING: {}", st.missing_recon_columns.join(", ")) },
            ]);
            println!("{}", output::table(&["check", "result"], rows));
            println!("{}", if st.ok() { "migration verified" } else { "migration NOT complete" });
        }
        return Ok(if st.ok() { 0 } else { 1 });
    }
    let mut conn = recondb::open(&ctx.env.recon_db)?;
    let _lock = crate::journal::lock::WriterLock::acquire(&ctx.env.recon_db, "recon-companion migrate")?;
    let applied = recondb::migrate(&mut conn)?;
    let st = recondb::migration_state(&conn)?;
    if ctx.json {
        output::print_json(&json!({ "applied": applied, "ok": st.ok() }))?;
    } else if applied.is_empty() {
        println!("already migrated: nothing to do");
    } else {
        println!("applied: {}", applied.join(", "));
    }
    Ok(if st.ok() { 0 } else { 1 })
}

/// `migrate --revert [--dry-run]`: the runbook's schema revert as a command.
/// Holds the writer lock throughout (so it refuses while a run is in progress
/// and no run starts meanwhile), exports `companion_runs` and `companion_journal`
/// to the reports dir, and only then drops the index and the four columns.
pub fn revert(ctx: &Ctx, dry_run: bool) -> Result<i32> {
    let mut conn = if dry_run { recondb::open_readonly(&ctx.env.recon_db)? } else { recondb::open(&ctx.env.recon_db)? };
    let _lock = crate::journal::lock::WriterLock::acquire(&ctx.env.recon_db, "recon-companion migrate --revert")?;
    let plan = recondb::revert_plan(&conn)?;
    let tables = recondb::migration_state(&conn)?.companion_tables;
    let (runs, entries) = if tables { export_counts(&conn)? } else { (0, 0) };
    let dir = ctx.env.reports_dir.join(format!("revert-{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ")));
    if dry_run {
        if ctx.json {
            output::print_json(&json!({ "dry_run": true, "would_drop": plan, "would_export": { "dir": dir, "runs": runs, "journal_entries": entries } }))?;
        } else {
            println!("would export {runs} run(s) and {entries} journal entr(ies) to {}", dir.display());
            let mut drop: Vec<String> = plan.columns.iter().map(|c| format!("documents.{c}")).collect();
            if plan.index {
                drop.insert(0, recondb::FEATURE_INDEX.to_string());
            }
            println!("would drop: {}", if drop.is_empty() { "nothing (not migrated)".into() } else { drop.join(", ") });
            println!("DRY RUN: nothing changed");
        }
        return Ok(0);
    }
    let exported = if tables { export(&conn, &dir)? } else { Vec::new() };
    let dropped = recondb::revert_migration(&mut conn)?;
    if ctx.json {
        output::print_json(&json!({ "exported": exported, "dropped": dropped }))?;
    } else {
        for p in &exported {
            println!("exported {}", p.display());
        }
        println!("{}", if dropped.is_empty() { "nothing to drop: not migrated".to_string() } else { format!("dropped: {}", dropped.join(", ")) });
    }
    Ok(0)
}

fn export_counts(conn: &rusqlite::Connection) -> Result<(i64, i64)> {
    let runs = conn.query_row("SELECT count(*) FROM companion_runs", [], |r| r.get(0)).ctx("cli::migrate::export_counts")?;
    let entries = conn.query_row("SELECT count(*) FROM companion_journal", [], |r| r.get(0)).ctx("cli::migrate::export_counts")?;
    Ok((runs, entries))
}

/// Writes runs.json (every run) and journal.jsonl (every entry, one JSON line
/// each) into `dir`, both complete before anything is dropped.
fn export(conn: &rusqlite::Connection, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let runs = journal::list_runs(conn, u64::MAX >> 1)?;
    let runs_path = dir.join("runs.json");
    std::fs::write(&runs_path, serde_json::to_string_pretty(&runs)?).map_err(|e| Error::io(&runs_path, e))?;
    let journal_path = dir.join("journal.jsonl");
    let file = std::fs::File::create(&journal_path).map_err(|e| Error::io(&journal_path, e))?;
    let mut out = std::io::BufWriter::new(file);
    let mut stmt = conn.prepare("SELECT id, run_id, kind, key, old, new, state, at, note FROM companion_journal ORDER BY id").ctx("cli::migrate::export")?;
    let mut rows = stmt.query([]).ctx("cli::migrate::export")?;
    while let Some(r) = rows.next().ctx("cli::migrate::export")? {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok()).unwrap_or(serde_json::Value::Null);
        let line = json!({
            "id": r.get::<_, i64>(0).ctx("cli::migrate::export")?, "run_id": r.get::<_, String>(1).ctx("cli::migrate::export")?, "kind": r.get::<_, String>(2).ctx("cli::migrate::export")?, "key": r.get::<_, String>(3).ctx("cli::migrate::export")?,
            "old": parse(r.get(4).ctx("cli::migrate::export")?), "new": parse(r.get(5).ctx("cli::migrate::export")?), "state": r.get::<_, String>(6).ctx("cli::migrate::export")?, "at": r.get::<_, String>(7).ctx("cli::migrate::export")?,
            "note": r.get::<_, Option<String>>(8).ctx("cli::migrate::export")?,
        });
        writeln!(out, "{line}").map_err(|e| Error::io(&journal_path, e))?;
    }
    out.flush().map_err(|e| Error::io(&journal_path, e))?;
    out.get_ref().sync_all().map_err(|e| Error::io(&journal_path, e))?;
    Ok(vec![runs_path, journal_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_then_revert_drops_the_columns_and_index_and_keeps_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("recon.db");
        let mut conn = rusqlite::Connection::open(&db).expect("db");
        conn.execute_batch(crate::recon::schema::RECON_SCHEMA).expect("schema");
        recondb::migrate(&mut conn).expect("migrate");
        let run = journal::start_run(&conn, "backfill", &json!({})).expect("run");
        journal::record(
            &conn,
            &run,
            journal::Kind::Documents,
            "h1",
            &json!({"recon_domain": null}),
            &json!({"recon_domain": "X"}),
            journal::EntryState::Applied,
        )
        .expect("entry");
        let plan = recondb::revert_plan(&conn).expect("plan");
        assert_eq!(plan.columns.len(), 4);
        assert!(plan.index);

        let out = export(&conn, &dir.path().join("export")).expect("export");
        let runs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out[0]).expect("runs")).expect("json");
        assert_eq!(runs[0]["run_id"], run.as_str());
        let lines = std::fs::read_to_string(&out[1]).expect("journal");
        assert_eq!(lines.lines().count(), 1);
        assert!(lines.contains("\"key\":\"h1\""), "{lines}");

        let dropped = recondb::revert_migration(&mut conn).expect("revert");
        assert_eq!(dropped.len(), 5, "{dropped:?}");
        let st = recondb::migration_state(&conn).expect("state");
        assert_eq!(st.missing_feature_columns.len(), 4);
        assert!(!st.index_present);
        assert!(st.missing_recon_columns.is_empty(), "RECON's own columns stay: {st:?}");
        assert!(st.companion_tables, "the journal stays");
        assert!(recondb::revert_migration(&mut conn).expect("again").is_empty(), "idempotent");
        // And the migration applies again.
        assert_eq!(recondb::migrate(&mut conn).expect("re-migrate").len(), 5);
    }
}
