//! Read-only looks at one document, its video and its channel (explain and spot-check).

use super::DomainColumns;
use crate::error::{DbContext, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// (hash, path) of the catalogue rows whose path contains a video's uuid
/// (`long`, matched case-insensitively) or short uuid. A substring match only
/// narrows the scan: the caller compares the path's tail exactly.
pub fn catalogue_rows_naming_video(conn: &Connection, long: Option<&str>, short: Option<&str>) -> Result<Vec<(String, Option<String>)>> {
    let key = long.or(short);
    let mut stmt = conn
        .prepare(
            "SELECT hash, path FROM catalogue
             WHERE (?1 IS NOT NULL AND instr(lower(path), ?1) > 0) OR (?2 IS NOT NULL AND instr(path, ?2) > 0)",
        )
        .ctx_in(conn, "preparing the catalogue lookup of video", key)?;
    let rows = stmt
        .query_map(params![long, short], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx_in(conn, "reading catalogue rows of video", key)?;
    Ok(rows)
}

/// One document as `explain` shows it: its `documents` and `catalogue` rows
/// side by side (either may be missing).
#[derive(Debug, Clone, Default)]
pub struct DocumentView {
    pub in_documents: bool,
    pub in_catalogue: bool,
    pub book_title: Option<String>,
    pub doc_filename: Option<String>,
    /// `documents.status` (RECON's pipeline status).
    pub doc_status: Option<String>,
    /// All None when the feature's columns do not exist yet.
    pub columns: DomainColumns,
    pub cat_filename: Option<String>,
    pub path: Option<String>,
    pub source: Option<String>,
    pub category: Option<String>,
}

/// Reads one document's rows; `migrated`: whether the feature's columns exist.
pub fn document_view(conn: &Connection, hash: &str, migrated: bool) -> Result<DocumentView> {
    let cols =
        if migrated { "d.recon_domain, d.recon_domain_status, d.recon_domain_assigned_at, d.peertube_category_pushed_at" } else { "NULL, NULL, NULL, NULL" };
    let sql = format!(
        "SELECT d.hash IS NOT NULL, c.hash IS NOT NULL, d.book_title, d.filename, d.status, {cols},
                c.filename, c.path, c.source, c.category
         FROM (SELECT ?1 AS hash) k
         LEFT JOIN documents d ON d.hash = k.hash
         LEFT JOIN catalogue c ON c.hash = k.hash"
    );
    conn.query_row(&sql, [hash], |r| {
        Ok(DocumentView {
            in_documents: r.get(0)?,
            in_catalogue: r.get(1)?,
            book_title: r.get(2)?,
            doc_filename: r.get(3)?,
            doc_status: r.get(4)?,
            columns: DomainColumns {
                recon_domain: r.get(5)?,
                recon_domain_status: r.get(6)?,
                recon_domain_assigned_at: r.get(7)?,
                peertube_category_pushed_at: r.get(8)?,
            },
            cat_filename: r.get(9)?,
            path: r.get(10)?,
            source: r.get(11)?,
            category: r.get(12)?,
        })
    })
    .ctx_in(conn, "reading the documents and catalogue rows of", Some(hash))
}

/// A document's title: `book_title` unless blank, else the catalogue's, else
/// the documents' file name.
pub fn document_title(conn: &Connection, hash: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT COALESCE(NULLIF(trim(d.book_title), ''), c.filename, d.filename)
             FROM (SELECT ?1 AS hash) k
             LEFT JOIN documents d ON d.hash = k.hash
             LEFT JOIN catalogue c ON c.hash = k.hash",
            [hash],
            |r| r.get(0),
        )
        .optional()
        .ctx_in(conn, "reading the title of", Some(hash))?
        .flatten())
}

/// Hashes of a channel's catalogue rows with the PeerTube `source`, unordered.
pub fn channel_members(conn: &Connection, source: &str, channel: &str) -> Result<Vec<String>> {
    // No ORDER BY: SQLite would walk the hash index and fetch every row by it
    // (~50 ms on 22,000 rows) instead of one sequential scan (~4 ms).
    let mut stmt =
        conn.prepare("SELECT hash FROM catalogue WHERE source = ?1 AND category = ?2").ctx_in(conn, "preparing the members of channel", Some(channel))?;
    let rows = stmt.query_map([source, channel], |r| r.get::<_, String>(0)).and_then(|rows| rows.collect::<Result<Vec<_>, _>>()).ctx_in(
        conn,
        "reading the members of channel",
        Some(channel),
    )?;
    Ok(rows)
}

/// Every document with `status`, in hash order.
pub fn hashes_with_status(conn: &Connection, status: crate::assign::Status) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT hash FROM documents WHERE recon_domain_status = ?1 ORDER BY hash").ctx_in(
        conn,
        "preparing the documents with status",
        Some(status.as_str()),
    )?;
    let rows = stmt.query_map([status.as_str()], |r| r.get::<_, String>(0)).and_then(|rows| rows.collect::<Result<Vec<_>, _>>()).ctx_in(
        conn,
        "reading the documents with status",
        Some(status.as_str()),
    )?;
    Ok(rows)
}
