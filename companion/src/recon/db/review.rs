//! The service's reads: the worker's new documents, the review queue, the push rule's rows.

use crate::error::{DbContext, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// Complete PeerTube documents the engine has never looked at (no domain, no
/// status), oldest first. Rows with a status but no domain (`tied_pass_1`,
/// `needs_reprocess`) belong to the tiebreaker and reprocess.
pub fn new_documents(conn: &Connection, source: &str, limit: u64) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT d.hash FROM documents d JOIN catalogue c ON c.hash = d.hash
             WHERE d.status = 'complete' AND d.recon_domain IS NULL AND d.recon_domain_status IS NULL
               AND c.source = ?1
             ORDER BY d.discovered_at, d.rowid LIMIT ?2",
        )
        .ctx_in(conn, "preparing the selection of new documents", None)?;
    let rows = stmt.query_map(params![source, limit as i64], |r| r.get(0)).and_then(|rows| rows.collect::<Result<Vec<String>, _>>()).ctx_in(
        conn,
        "selecting new documents",
        None,
    )?;
    Ok(rows)
}

/// How many documents [`new_documents`] would select without a limit.
pub fn count_new_documents(conn: &Connection, source: &str) -> Result<u64> {
    Ok(conn
        .query_row(
            "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash
             WHERE d.status = 'complete' AND d.recon_domain IS NULL AND d.recon_domain_status IS NULL
               AND c.source = ?1",
            [source],
            |r| r.get::<_, i64>(0),
        )
        .ctx_in(conn, "counting new documents", None)? as u64)
}

/// Documents with `status`.
pub fn count_status(conn: &Connection, status: crate::assign::Status) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM documents WHERE recon_domain_status = ?1", [status.as_str()], |r| r.get::<_, i64>(0)).ctx_in(
        conn,
        "counting documents with status",
        Some(status.as_str()),
    )? as u64)
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
    let mut stmt = conn
        .prepare_cached(
            "SELECT d.hash, COALESCE(d.book_title, c.filename, d.filename), c.category, c.path,
                    d.recon_domain, d.recon_domain_assigned_at
             FROM documents d LEFT JOIN catalogue c ON c.hash = d.hash
             WHERE d.recon_domain_status = 'tied_manual'
             ORDER BY d.discovered_at, d.rowid",
        )
        .ctx_in(conn, "preparing the review queue", None)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(ReviewRow { hash: r.get(0)?, title: r.get(1)?, channel: r.get(2)?, path: r.get(3)?, fallback: r.get(4)?, assigned_at: r.get(5)? })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx_in(conn, "reading the review queue", None)?;
    Ok(rows)
}

/// Whether `documents` has a row for `hash`.
pub fn document_exists(conn: &Connection, hash: &str) -> Result<bool> {
    Ok(conn.query_row("SELECT 1 FROM documents WHERE hash = ?1", [hash], |_| Ok(())).optional().ctx_in(conn, "looking up documents row", Some(hash))?.is_some())
}

/// A document the push rule selects (domain set, not pushed, PeerTube source).
#[derive(Debug, Clone)]
pub struct UnpushedRow {
    pub hash: String,
    pub path: String,
    pub domain: String,
    pub assigned_at: Option<String>,
}

/// The push rule's rows among `hashes` (overridden videos never), in their order; others are left out.
pub fn unpushed_rows(conn: &Connection, source: &str, hashes: &[String]) -> Result<Vec<UnpushedRow>> {
    let skip = super::skip_overridden_sql(conn)?;
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT d.hash, c.path, d.recon_domain, d.recon_domain_assigned_at
             FROM documents d JOIN catalogue c ON c.hash = d.hash
             WHERE d.hash = ?1 AND d.recon_domain IS NOT NULL AND d.peertube_category_pushed_at IS NULL AND c.source = ?2 {skip}"
        ))
        .ctx_in(conn, "preparing the push selection", None)?;
    let mut out = Vec::with_capacity(hashes.len());
    for h in hashes {
        let row = stmt
            .query_row(params![h, source], |r| Ok(UnpushedRow { hash: r.get(0)?, path: r.get(1)?, domain: r.get(2)?, assigned_at: r.get(3)? }))
            .optional()
            .ctx_in(conn, "reading the push row of", Some(h))?;
        out.extend(row);
    }
    Ok(out)
}
