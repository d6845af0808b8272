//! `--reprocess-missing`: quarantine (never delete) each `needs_reprocess` document's concept dir, reset and re-queue it.

use super::run::open_for;
use crate::config::SourceKind;
use crate::context::Env;
use crate::error::DbContext;
use crate::error::{Error, Result};
use crate::journal::{self, EntryState, Kind};
use crate::recon::concepts;
use crate::recon::db as recondb;
use rusqlite::Connection;
use serde::Serialize;
use serde_json::{json, Value};
use std::path::Path;

pub use crate::recon::db::RESET_COLUMNS;

/// One `needs_reprocess` document as the reprocess pass sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ReprocessItem {
    pub hash: String,
    pub title: Option<String>,
    pub concept_dir: Option<String>,
    pub files: u64,
    pub quarantined_to: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReprocessSummary {
    pub dry_run: bool,
    pub run_id: Option<String>,
    pub report: Option<String>,
    pub selected: u64,
    pub queued: u64,
    pub dirs_quarantined: u64,
    pub files_quarantined: u64,
    pub refused: u64,
    pub items: Vec<ReprocessItem>,
    pub quarantine_dir: Option<String>,
}

fn count_files(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok()).count() as u64).unwrap_or(0)
}

/// Reprocess: moves each `needs_reprocess` document's concept dir into a per-run
/// quarantine (never deletes), resets the document as RECON did and queues it
/// (documents *and* catalogue rows, fixing RECON's stranded-at-catalogued bug).
pub fn reprocess(env: &Env, limit: Option<u64>, dry_run: bool) -> Result<ReprocessSummary> {
    let mut summary = ReprocessSummary { dry_run, ..Default::default() };
    let (mut conn, run) = open_for(env, "reprocess", limit, dry_run)?;
    if !recondb::feature_columns_present(&conn)? {
        return Ok(summary);
    }
    let rows = recondb::needs_reprocess_rows(&conn, limit)?;
    summary.selected = rows.len() as u64;
    // With Qdrant as the source the concept dirs are not what is counted:
    // reprocess only re-queues (RECON 3b37d96) and never touches them.
    let files = env.concepts.kind() == SourceKind::Files;
    let qdir = run.as_ref().map(|r| env.quarantine_dir.join(&r.id));
    summary.quarantine_dir = qdir.as_ref().filter(|_| files).map(|p| p.display().to_string());
    for (hash, title) in rows {
        let mut item = ReprocessItem { hash: hash.clone(), title, concept_dir: None, files: 0, quarantined_to: None, error: None };
        // With Qdrant there is no concept dir to quarantine: the document is only re-queued.
        let dir = if files {
            match concepts::concept_dir(&env.concepts_dir, &hash) {
                Ok(d) => Some(d).filter(|d| d.is_dir()),
                Err(e) => {
                    item.error = Some(e.to_string());
                    summary.refused += 1;
                    summary.items.push(item);
                    continue;
                }
            }
        } else {
            None
        };
        if let Some(d) = &dir {
            item.concept_dir = Some(d.display().to_string());
            item.files = count_files(d);
        }
        if let (Some(run), Some(qdir)) = (&run, &qdir) {
            if let Err(e) = reprocess_one(&mut conn, &run.id, &hash, dir.as_deref(), qdir, &mut item) {
                item.error = Some(e.to_string());
                summary.refused += 1;
                summary.items.push(item);
                run.finish_failed(env, &conn, &serde_json::to_value(&summary)?);
                return Err(e);
            }
            summary.queued += 1;
            if item.quarantined_to.is_some() {
                summary.dirs_quarantined += 1;
                summary.files_quarantined += item.files;
            }
        }
        summary.items.push(item);
    }
    if let Some(run) = run {
        summary.run_id = Some(run.id.clone());
        let path = run.finish(env, &conn, "done", &serde_json::to_value(&summary)?)?;
        summary.report = Some(path.display().to_string());
    }
    Ok(summary)
}

fn reprocess_one(conn: &mut Connection, run_id: &str, hash: &str, dir: Option<&Path>, qdir: &Path, item: &mut ReprocessItem) -> Result<()> {
    // 1. Journal the move as pending *before* it happens, so a crash between the
    //    move and the row reset still leaves a record of where the dir went.
    let mut move_entry = None;
    if let Some(dir) = dir {
        // The quarantine path follows the same hash rule as the concept dir.
        let dest = concepts::concept_dir(qdir, hash)?;
        std::fs::create_dir_all(qdir).map_err(|e| Error::io(qdir, e))?;
        let old = json!({ "path": dir.display().to_string() });
        let new = json!({ "path": dest.display().to_string(), "files": item.files });
        let id = recondb::retry_busy(|| journal::record(conn, run_id, Kind::ConceptDir, hash, &old, &new, EntryState::Pending))?;
        tracing::info!(hash, from = %dir.display(), to = %dest.display(), files = item.files, "quarantining concept dir");
        eprintln!("quarantine {hash}: {} ({} files) -> {}", dir.display(), item.files, dest.display());
        std::fs::rename(dir, &dest).map_err(|e| Error::io(dir, e))?;
        item.quarantined_to = Some(dest.display().to_string());
        move_entry = Some(id);
    }
    // 2. Reset and queue in one transaction with its journal entries.
    recondb::retry_busy(|| {
        let tx = recondb::write_tx(conn)?;
        let old_doc = recondb::row_values(&tx, "documents", &RESET_COLUMNS, hash)?.ok_or_else(|| Error::NotFound(format!("document {hash}")))?;
        let mut new_doc = old_doc.clone();
        for c in RESET_COLUMNS {
            new_doc.insert(c.to_string(), Value::Null);
        }
        new_doc.insert("status".into(), json!("queued"));
        new_doc.insert("concepts_extracted".into(), json!(0));
        new_doc.insert("vectors_inserted".into(), json!(0));
        recondb::reset_and_queue_document(&tx, hash)?;
        journal::record(&tx, run_id, Kind::Documents, hash, &Value::Object(old_doc), &Value::Object(new_doc), EntryState::Applied)?;
        if let Some(old_cat) = recondb::row_values(&tx, "catalogue", &["status"], hash)? {
            recondb::queue_catalogue(&tx, hash)?;
            journal::record(&tx, run_id, Kind::Catalogue, hash, &Value::Object(old_cat), &json!({"status": "queued"}), EntryState::Applied)?;
        }
        if let Some(id) = move_entry {
            journal::set_state(&tx, id, EntryState::Applied, None)?;
        }
        tx.commit().ctx("engine::reprocess::reprocess_one")?;
        Ok(())
    })
}
