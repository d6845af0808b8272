//! The service's own reads and writes of recon.db: the worker's selection of new
//! documents, the review queue, and the manual assignment (journaled like every
//! engine write, in short transactions).

use crate::assign::{Outcome, Status};
use crate::engine::journal::{self, EntryState, Kind};
use crate::error::{Error, Result};
use crate::recon::db::{self as recondb, DomainColumns};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

/// Rows per write transaction: RECON's writers wait at most this long on us.
const WRITE_BATCH: usize = 500;

/// Complete PeerTube documents the engine has never looked at (no domain, no
/// status): what RECON finished since the last poll. Rows with a status but no
/// domain (`tied_pass_1`, `needs_reprocess`) belong to the tiebreaker and reprocess.
pub fn new_documents(conn: &Connection, source: &str, limit: u64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.hash FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND d.recon_domain IS NULL AND d.recon_domain_status IS NULL
           AND c.source = ?1
         ORDER BY d.discovered_at, d.rowid LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![source, limit as i64], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(rows)
}

pub fn count_new_documents(conn: &Connection, source: &str) -> Result<u64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND d.recon_domain IS NULL AND d.recon_domain_status IS NULL
           AND c.source = ?1",
        [source],
        |r| r.get::<_, i64>(0),
    )? as u64)
}

pub fn count_status(conn: &Connection, status: Status) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM documents WHERE recon_domain_status = ?1", [status.as_str()], |r| r.get::<_, i64>(0))? as u64)
}

/// One `tied_manual` row as the review queue lists it.
#[derive(Debug, Clone)]
pub struct ReviewRow {
    pub hash: String,
    pub title: Option<String>,
    pub channel: Option<String>,
    pub path: Option<String>,
    pub fallback: Option<String>,
    pub assigned_at: Option<String>,
}

/// Every document waiting for a person, oldest first.
pub fn review_rows(conn: &Connection) -> Result<Vec<ReviewRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.hash, COALESCE(d.book_title, c.filename, d.filename), c.category, c.path,
                d.recon_domain, d.recon_domain_assigned_at
         FROM documents d LEFT JOIN catalogue c ON c.hash = d.hash
         WHERE d.recon_domain_status = 'tied_manual'
         ORDER BY d.discovered_at, d.rowid",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(ReviewRow { hash: r.get(0)?, title: r.get(1)?, channel: r.get(2)?, path: r.get(3)?, fallback: r.get(4)?, assigned_at: r.get(5)? })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn document_exists(conn: &Connection, hash: &str) -> Result<bool> {
    Ok(conn.query_row("SELECT 1 FROM documents WHERE hash = ?1", [hash], |_| Ok(())).optional()?.is_some())
}

/// Writes pass-1 outcomes for documents that are still untouched (compare-and-set:
/// a row someone assigned meanwhile is left alone). Returns (written, conflicts).
pub fn write_new_outcomes(conn: &mut Connection, run_id: &str, changes: &[(String, Outcome)]) -> Result<(u64, u64)> {
    let (mut written, mut conflicts) = (0u64, 0u64);
    for batch in changes.chunks(WRITE_BATCH) {
        let (w, c) = recondb::retry_busy(|| {
            let tx = recondb::write_tx(conn)?;
            let (mut w, mut c) = (0u64, 0u64);
            let now = recondb::now();
            for (hash, outcome) in batch {
                let Some(cur) = recondb::domain_columns(&tx, hash)? else {
                    c += 1;
                    continue;
                };
                if cur.recon_domain.is_some() || cur.recon_domain_status.is_some() {
                    c += 1;
                    continue;
                }
                let new = DomainColumns {
                    recon_domain: outcome.domain_label().map(str::to_string),
                    recon_domain_status: Some(outcome.status.as_str().to_string()),
                    recon_domain_assigned_at: Some(now.clone()),
                    peertube_category_pushed_at: cur.peertube_category_pushed_at.clone(),
                };
                recondb::set_domain_columns(&tx, hash, &new)?;
                journal::record(&tx, run_id, Kind::Documents, hash, &serde_json::to_value(&cur)?, &serde_json::to_value(&new)?, EntryState::Applied)?;
                w += 1;
            }
            tx.commit()?;
            Ok((w, c))
        })?;
        written += w;
        conflicts += c;
    }
    Ok((written, conflicts))
}

/// A person's choice: `manual_assigned` with `label`, push timestamp cleared so
/// the new category is pushed. Returns the columns before the change.
pub fn write_manual(conn: &mut Connection, run_id: &str, hash: &str, label: &str) -> Result<DomainColumns> {
    recondb::retry_busy(|| {
        let tx = recondb::write_tx(conn)?;
        let cur = recondb::domain_columns(&tx, hash)?.ok_or_else(|| Error::NotFound(format!("document {hash}")))?;
        let new = DomainColumns {
            recon_domain: Some(label.to_string()),
            recon_domain_status: Some(Status::ManualAssigned.as_str().to_string()),
            recon_domain_assigned_at: Some(recondb::now()),
            peertube_category_pushed_at: None,
        };
        recondb::set_domain_columns(&tx, hash, &new)?;
        journal::record(&tx, run_id, Kind::Documents, hash, &serde_json::to_value(&cur)?, &serde_json::to_value(&new)?, EntryState::Applied)?;
        tx.commit()?;
        Ok(cur)
    })
}

/// Documents a run left with a pushable status (`assigned`, `tied_pass_2`): what
/// the worker pushes after its scheduled tiebreaker.
pub fn pushable_from_run(conn: &Connection, run_id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in journal::entries(conn, run_id)? {
        if e.kind != Kind::Documents || e.state != EntryState::Applied {
            continue;
        }
        let status = e.new.get("recon_domain_status").and_then(Value::as_str);
        if matches!(status, Some("assigned") | Some("tied_pass_2")) {
            out.push(e.key);
        }
    }
    Ok(out)
}

/// Whether a document still waits for its push (domain set, not pushed).
pub fn push_pending(conn: &Connection, hash: &str) -> Result<bool> {
    Ok(recondb::domain_columns(conn, hash)?.is_some_and(|c| c.recon_domain.is_some() && c.peertube_category_pushed_at.is_none()))
}

/// The push rule's rows (domain set, not pushed, PeerTube source) for the given documents.
pub fn push_docs(conn: &Connection, source: &str, hashes: &[String]) -> Result<Vec<crate::peertube::ledger::PushDoc>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.hash, c.path, d.recon_domain, d.recon_domain_assigned_at
         FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.hash = ?1 AND d.recon_domain IS NOT NULL AND d.peertube_category_pushed_at IS NULL AND c.source = ?2",
    )?;
    let mut out = Vec::with_capacity(hashes.len());
    for h in hashes {
        let row = stmt
            .query_row(params![h, source], |r| {
                Ok(crate::peertube::ledger::PushDoc { hash: r.get(0)?, path: r.get(1)?, domain: r.get(2)?, assigned_at: r.get(3)? })
            })
            .optional()?;
        out.extend(row);
    }
    Ok(out)
}
