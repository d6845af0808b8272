//! The engine's passes: the backfill and tiebreaker selections, a document's domain columns, reprocess's reset, journal rows.

use crate::error::DbContext;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// A document the engine may (re)assign.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub hash: String,
    pub channel: Option<String>,
    /// The documents rowid the selection read (`None` where it was not read):
    /// a write's hint, checked against the hash when it is used.
    pub doc: Option<i64>,
}

/// Backfill selection: complete, domain NULL, PeerTube catalogue row; oldest
/// `discovered_at` first (rowid breaks ties the way SQLite's scan order does).
pub fn backfill_candidates(conn: &Connection, source: &str, limit: Option<u64>, migrated: bool) -> Result<Vec<Candidate>> {
    let domain_null = if migrated { "AND d.recon_domain IS NULL" } else { "" };
    let sql = format!(
        "SELECT d.hash, c.category, d.rowid FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' {domain_null} AND c.source = ?1
         ORDER BY d.discovered_at, d.rowid LIMIT ?2"
    );
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut stmt = conn.prepare(&sql).ctx("recon::db::documents::backfill_candidates")?;
    let rows = stmt
        .query_map(params![source, limit], |r| Ok(Candidate { hash: r.get(0)?, channel: r.get(1)?, doc: r.get(2)? }))
        .ctx("recon::db::documents::backfill_candidates")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("recon::db::documents::backfill_candidates")?;
    Ok(rows)
}

/// Every `tied_pass_1` document, whatever its source, with its catalogue channel.
pub fn tied_candidates(conn: &Connection, limit: Option<u64>) -> Result<Vec<Candidate>> {
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut stmt = conn
        .prepare(
            "SELECT d.hash, c.category, d.rowid FROM documents d LEFT JOIN catalogue c ON c.hash = d.hash
         WHERE d.recon_domain_status = 'tied_pass_1' ORDER BY d.discovered_at, d.rowid LIMIT ?1",
        )
        .ctx("recon::db::documents::tied_candidates")?;
    let rows = stmt
        .query_map([limit], |r| Ok(Candidate { hash: r.get(0)?, channel: r.get(1)?, doc: r.get(2)? }))
        .ctx("recon::db::documents::tied_candidates")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("recon::db::documents::tied_candidates")?;
    Ok(rows)
}

/// (hash, channel) of every catalogue row with the PeerTube source.
pub fn stream_catalogue(conn: &Connection, source: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut stmt = conn.prepare("SELECT hash, category FROM catalogue WHERE source = ?1").ctx("recon::db::documents::stream_catalogue")?;
    let rows = stmt
        .query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))
        .ctx("recon::db::documents::stream_catalogue")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("recon::db::documents::stream_catalogue")?;
    Ok(rows)
}

/// The four feature columns of one document.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DomainColumns {
    pub recon_domain: Option<String>,
    pub recon_domain_status: Option<String>,
    pub recon_domain_assigned_at: Option<String>,
    pub peertube_category_pushed_at: Option<String>,
}

pub fn domain_columns(conn: &Connection, hash: &str) -> Result<Option<DomainColumns>> {
    conn.prepare_cached(
        "SELECT recon_domain, recon_domain_status, recon_domain_assigned_at, peertube_category_pushed_at
             FROM documents WHERE hash = ?1",
    )
    .ctx("recon::db::documents::domain_columns")?
    .query_row([hash], |r| {
        Ok(DomainColumns {
            recon_domain: r.get(0)?,
            recon_domain_status: r.get(1)?,
            recon_domain_assigned_at: r.get(2)?,
            peertube_category_pushed_at: r.get(3)?,
        })
    })
    .optional()
    .ctx("recon::db::documents::domain_columns")
}

pub fn set_domain_columns(conn: &Connection, hash: &str, c: &DomainColumns) -> Result<usize> {
    conn.prepare_cached(
        "UPDATE documents SET recon_domain = ?2, recon_domain_status = ?3,
                 recon_domain_assigned_at = ?4, peertube_category_pushed_at = ?5 WHERE hash = ?1",
    )
    .ctx("recon::db::documents::set_domain_columns")?
    .execute(params![hash, c.recon_domain, c.recon_domain_status, c.recon_domain_assigned_at, c.peertube_category_pushed_at])
    .ctx("recon::db::documents::set_domain_columns")
}

/// Columns of `documents` the reprocess reset touches (RECON's reset plus ours);
/// also the only `documents` columns a rollback may write.
pub const RESET_COLUMNS: [&str; 11] = [
    "status",
    "concepts_extracted",
    "vectors_inserted",
    "recon_domain",
    "recon_domain_status",
    "recon_domain_assigned_at",
    "peertube_category_pushed_at",
    "error_message",
    "extracted_at",
    "enriched_at",
    "embedded_at",
];

/// One row's `cols` of `table` as JSON values (journal entries), None when absent.
pub fn row_values(conn: &Connection, table: &str, cols: &[&str], hash: &str) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    let sql = format!("SELECT {} FROM {table} WHERE hash = ?1", cols.join(", "));
    let row = conn
        .query_row(&sql, [hash], |r| {
            let mut m = serde_json::Map::new();
            for (i, c) in cols.iter().enumerate() {
                let v: rusqlite::types::Value = r.get(i)?;
                m.insert((*c).to_string(), sql_to_json(v));
            }
            Ok(m)
        })
        .optional()
        .ctx("recon::db::documents::row_values")?;
    Ok(row)
}

pub fn sql_to_json(v: rusqlite::types::Value) -> serde_json::Value {
    use rusqlite::types::Value as V;
    use serde_json::json;
    match v {
        V::Null => serde_json::Value::Null,
        V::Integer(i) => json!(i),
        V::Real(f) => json!(f),
        V::Text(s) => json!(s),
        V::Blob(b) => json!(hex::encode(b)),
    }
}

/// (hash, title) of `needs_reprocess` documents, oldest first.
pub fn needs_reprocess_rows(conn: &Connection, limit: Option<u64>) -> Result<Vec<(String, Option<String>)>> {
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut stmt = conn
        .prepare(
            "SELECT hash, COALESCE(book_title, filename) FROM documents WHERE recon_domain_status = 'needs_reprocess'
         ORDER BY discovered_at, rowid LIMIT ?1",
        )
        .ctx("recon::db::documents::needs_reprocess_rows")?;
    let rows = stmt
        .query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))
        .ctx("recon::db::documents::needs_reprocess_rows")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("recon::db::documents::needs_reprocess_rows")?;
    Ok(rows)
}

/// RECON's reset of a document for re-extraction, queued (not left at `catalogued`).
pub fn reset_and_queue_document(conn: &Connection, hash: &str) -> Result<usize> {
    conn.execute(
        "UPDATE documents SET status = 'queued', concepts_extracted = 0, vectors_inserted = 0,
             recon_domain = NULL, recon_domain_status = NULL, recon_domain_assigned_at = NULL,
             peertube_category_pushed_at = NULL, error_message = NULL, extracted_at = NULL,
             enriched_at = NULL, embedded_at = NULL WHERE hash = ?1",
        [hash],
    )
    .ctx("recon::db::documents::reset_and_queue_document")
}

pub fn queue_catalogue(conn: &Connection, hash: &str) -> Result<usize> {
    conn.execute("UPDATE catalogue SET status = 'queued' WHERE hash = ?1", [hash]).ctx("recon::db::documents::queue_catalogue")
}

/// The backfill selection, where the Qdrant source also re-selects
/// `needs_reprocess` rows (a failed request is transient there).
pub fn backfill_selection(conn: &Connection, source: &str, limit: Option<u64>, migrated: bool, reselect_needs_reprocess: bool) -> Result<Vec<Candidate>> {
    if !(migrated && reselect_needs_reprocess) {
        return backfill_candidates(conn, source, limit, migrated);
    }
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let mut stmt = conn
        .prepare(
            "SELECT d.hash, c.category, d.rowid FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND (d.recon_domain IS NULL OR d.recon_domain_status = 'needs_reprocess') AND c.source = ?1
         ORDER BY d.discovered_at, d.rowid LIMIT ?2",
        )
        .ctx("recon::db::documents::backfill_selection")?;
    let rows = stmt
        .query_map(params![source, limit], |r| Ok(Candidate { hash: r.get(0)?, channel: r.get(1)?, doc: r.get(2)? }))
        .ctx("recon::db::documents::backfill_selection")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("recon::db::documents::backfill_selection")?;
    Ok(rows)
}

/// Up to `n` complete PeerTube documents spread over the table (verify-qdrant's sample).
pub fn sample_complete_stream(conn: &Connection, source: &str, n: u64) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT d.hash FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND c.source = ?1 ORDER BY random() LIMIT ?2",
        )
        .ctx("recon::db::documents::sample_complete_stream")?;
    let rows = stmt
        .query_map(params![source, n as i64], |r| r.get(0))
        .ctx("recon::db::documents::sample_complete_stream")?
        .collect::<Result<Vec<String>, _>>()
        .ctx("recon::db::documents::sample_complete_stream")?;
    Ok(rows)
}
