//! `runs` and `rollback`: the journal of runs, and undoing one.

use super::Ctx;
use crate::config::Transport;
use crate::engine::rollback;
use crate::error::Result;
use crate::journal;
use crate::output;
use crate::recon::db as recondb;
use serde_json::json;

pub fn runs(ctx: &Ctx, limit: u64, show: Option<&str>) -> Result<i32> {
    let conn = recondb::open_readonly(&ctx.env.recon_db)?;
    if !recondb::migration_state(&conn)?.companion_tables {
        println!("no runs yet (recon.db has no companion tables)");
        return Ok(0);
    }
    if let Some(id) = show {
        let run = journal::get_run(&conn, id)?;
        let entries = journal::entries(&conn, id)?;
        if ctx.json {
            output::print_json(&json!({ "run": run, "entries": entries }))?;
        } else {
            println!("{} {} ({}) started {} — {} changes", run.run_id, run.command, run.state, run.started_at, entries.len());
            println!(
                "{}",
                output::table(
                    &["#", "kind", "key", "old", "new", "state"],
                    entries.iter().map(|e| vec![
                        e.id.to_string(),
                        e.kind.as_str().into(),
                        e.key.clone(),
                        e.old.to_string(),
                        e.new.to_string(),
                        e.state.as_str().into()
                    ])
                )
            );
        }
        return Ok(0);
    }
    let list = journal::list_runs(&conn, limit)?;
    if ctx.json {
        output::print_json(&list)?;
    } else {
        let interrupted = list.iter().filter(|r| r.state == journal::INTERRUPTED).count();
        println!(
            "{}",
            output::table(
                &["run id", "command", "state", "started", "finished", "changes", "report"],
                list.iter().map(|r| {
                    vec![
                        r.run_id.clone(),
                        r.command.clone(),
                        match &r.rolled_back_by {
                            Some(by) => format!("{} by {by}", r.state),
                            None => r.state.clone(),
                        },
                        r.started_at.chars().take(19).collect(),
                        r.finished_at.clone().unwrap_or_default().chars().take(19).collect(),
                        r.changes.to_string(),
                        r.report_path.clone().unwrap_or_default(),
                    ]
                })
            )
        );
        if interrupted > 0 {
            println!(
                "{interrupted} run(s) interrupted: their process died before finishing (kill -9, crash); \
                 their journal says what they changed, and `rollback --run RUN_ID` undoes it"
            );
        }
    }
    Ok(0)
}

pub fn rollback_cmd(ctx: &Ctx, run: &str, dry_run: bool, force: bool, via: Option<Transport>) -> Result<i32> {
    // Through the transport the run used unless --via says otherwise.
    let restorer = {
        let conn = recondb::open_readonly(&ctx.env.recon_db)?;
        crate::peertube::restore::restorer_for_run(&ctx.cfg, &conn, run, via)?
    };
    let s = rollback::rollback(&ctx.env, run, force, dry_run, restorer)?;
    if ctx.json {
        output::print_json(&s)?;
    } else {
        println!(
            "{}",
            output::kv(vec![
                ("run rolled back", format!("{} ({})", s.target_run, s.target_command)),
                ("recon.db rows restored", s.rows_restored.to_string()),
                ("rows already at their old value", s.rows_already_restored.to_string()),
                ("concept dirs moved back", s.dirs_restored.to_string()),
                ("PeerTube videos restored", s.videos_restored.to_string()),
                ("conflicts (changed since)", s.conflicts.len().to_string()),
                ("failed", s.failed.len().to_string()),
            ])
        );
        for c in s.conflicts.iter().take(20) {
            println!("conflict: {c}");
        }
        for f in s.failed.iter().take(20) {
            println!("failed: {f}");
        }
        if dry_run {
            println!("DRY RUN: nothing changed");
        } else if let Some(id) = &s.run_id {
            println!("rollback run {id}; report {}", s.report.clone().unwrap_or_default());
        }
    }
    Ok(if s.failed.is_empty() { 0 } else { 1 })
}
