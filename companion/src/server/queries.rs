//! The service's own reads and writes of recon.db: the worker's selection of new
//! documents, the review queue, and the manual assignment (journaled like every
//! engine write, in short transactions).

use crate::assign::{Outcome, Status};
use crate::error::{DbContext, Error, Result};
use crate::journal::{self, EntryState, Kind};
use crate::peertube::ledger::PushDoc;
use crate::recon::db::{self as recondb, DomainColumns};
use rusqlite::Connection;
use serde_json::Value;

pub use crate::recon::db::ReviewRow;

/// Complete PeerTube documents the engine has never looked at (no domain, no
/// status): what RECON finished since the last poll. Rows with a status but no
/// domain (`tied_pass_1`, `needs_reprocess`) belong to the tiebreaker and reprocess.
pub fn new_documents(conn: &Connection, source: &str, limit: u64) -> Result<Vec<String>> {
    recondb::new_documents(conn, source, limit)
}

pub fn count_new_documents(conn: &Connection, source: &str) -> Result<u64> {
    recondb::count_new_documents(conn, source)
}

pub fn count_status(conn: &Connection, status: Status) -> Result<u64> {
    recondb::count_status(conn, status)
}

/// Every document waiting for a person, oldest first.
pub fn review_rows(conn: &Connection) -> Result<Vec<ReviewRow>> {
    recondb::review_rows(conn)
}

pub fn document_exists(conn: &Connection, hash: &str) -> Result<bool> {
    recondb::document_exists(conn, hash)
}

/// Writes pass-1 outcomes for documents that are still untouched (compare-and-set:
/// a row someone assigned meanwhile is left alone). Returns (written, conflicts).
pub fn write_new_outcomes(conn: &mut Connection, run_id: &str, changes: &[(String, Outcome)]) -> Result<(u64, u64)> {
    let [written, conflicts, _] = recondb::write_paced(conn, changes, "committing the worker's new outcomes", |tx, (hash, outcome), n| {
        let Some(cur) = recondb::domain_columns(tx, hash)? else {
            n[1] += 1;
            return Ok(());
        };
        if cur.recon_domain.is_some() || cur.recon_domain_status.is_some() {
            n[1] += 1;
            return Ok(());
        }
        let new = DomainColumns {
            recon_domain: outcome.domain_label().map(str::to_string),
            recon_domain_status: Some(outcome.status.as_str().to_string()),
            recon_domain_assigned_at: Some(recondb::now()),
            peertube_category_pushed_at: cur.peertube_category_pushed_at.clone(),
        };
        journal::write_domain_columns(tx, run_id, hash, &cur, &new)?;
        n[0] += 1;
        Ok(())
    })?;
    Ok((written, conflicts))
}

/// A person's choice: `manual_assigned` with `label`, push timestamp cleared so
/// the new category is pushed (an override of its video is removed). Returns the columns before the change.
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
        journal::write_domain_columns(&tx, run_id, hash, &cur, &new)?;
        // The operator's choice replaces a person's override in PeerTube: it is pushed.
        for o in recondb::list_overrides(&tx)?.into_iter().filter(|o| o.hash == hash) {
            recondb::delete_override(&tx, &o.video)?;
            journal::record(&tx, run_id, Kind::Override, &o.video, &serde_json::to_value(&o)?, &Value::Null, EntryState::Applied)?;
        }
        tx.commit().ctx_key("committing the manual assignment of", hash)?;
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
pub fn push_docs(conn: &Connection, source: &str, hashes: &[String]) -> Result<Vec<PushDoc>> {
    Ok(recondb::unpushed_rows(conn, source, hashes)?
        .into_iter()
        .map(|r| PushDoc { hash: r.hash, path: r.path, domain: r.domain, assigned_at: r.assigned_at })
        .collect())
}
