//! The SQL of the reassessment and of stale detection: the rows the machine decided (never overridden ones: `overrides::skip_overridden_sql`) and RECON's timestamps newer than an assignment.

use super::documents::DomainColumns;
use crate::error::DbContext;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// The statuses the machine decided (what a reassessment may change). Never
/// `manual_assigned` (a person decided) nor `tied_pass_1` (waiting for the
/// tiebreaker anyway).
pub const MACHINE_STATUSES_SQL: &str = "('assigned','tied_pass_2','tied_manual','needs_reprocess','no_concepts')";

/// A row the machine decided, as the selection read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub hash: String,
    pub channel: Option<String>,
    pub cols: DomainColumns,
}

const DECIDED_COLUMNS: &str = "d.hash, c.category, d.recon_domain, d.recon_domain_status, d.recon_domain_assigned_at, d.peertube_category_pushed_at";

fn decided_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Decided> {
    Ok(Decided {
        hash: r.get(0)?,
        channel: r.get(1)?,
        cols: DomainColumns {
            recon_domain: r.get(2)?,
            recon_domain_status: r.get(3)?,
            recon_domain_assigned_at: r.get(4)?,
            peertube_category_pushed_at: r.get(5)?,
        },
    })
}

fn query_decided(conn: &Connection, sql: &str, params: impl rusqlite::Params, what: &'static str) -> Result<Vec<Decided>> {
    let mut stmt = conn.prepare(sql).ctx(what)?;
    let rows = stmt.query_map(params, decided_row).ctx(what)?.collect::<Result<Vec<_>, _>>().ctx(what)?;
    Ok(rows)
}

/// The reassessment's selection: complete PeerTube documents the machine
/// decided, not overridden, oldest assignment first (`--limit` takes those).
/// A document RECON is working on (status not `complete`) waits.
pub fn reassess_selection(conn: &Connection, source: &str, limit: Option<u64>) -> Result<Vec<Decided>> {
    let sql = format!(
        "SELECT {DECIDED_COLUMNS} FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND c.source = ?1 AND d.recon_domain_status IN {MACHINE_STATUSES_SQL} {}
         ORDER BY d.recon_domain_assigned_at, d.rowid LIMIT ?2",
        super::skip_overridden_sql(conn)?
    );
    query_decided(conn, &sql, params![source, limit.map(|l| l as i64).unwrap_or(-1)], "recon::db::reassess::reassess_selection")
}

/// Up to `n` decided rows after `cursor` in hash order (the service's rolling
/// re-check; an empty result means the cursor went round: start again at "").
pub fn decided_after(conn: &Connection, source: &str, cursor: &str, n: u64) -> Result<Vec<Decided>> {
    let sql = format!(
        "SELECT {DECIDED_COLUMNS} FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.hash > ?2 AND d.status = 'complete' AND c.source = ?1 AND d.recon_domain_status IN {MACHINE_STATUSES_SQL} {}
         ORDER BY d.hash LIMIT ?3",
        super::skip_overridden_sql(conn)?
    );
    query_decided(conn, &sql, params![source, cursor, n as i64], "recon::db::reassess::decided_after")
}

/// Decided rows RECON worked on after their assignment: `enriched_at` (new
/// concepts: files rewritten) or `embedded_at` (points upserted into Qdrant)
/// later than `recon_domain_assigned_at`. `julianday` compares RECON's
/// `YYYY-MM-DD HH:MM:SS` and our RFC 3339 times as instants (both UTC).
pub fn stale_by_recon_times(conn: &Connection, source: &str) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT d.hash FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND c.source = ?1 AND d.recon_domain_status IN {MACHINE_STATUSES_SQL} {}
           AND (julianday(d.enriched_at) > julianday(d.recon_domain_assigned_at)
                OR julianday(d.embedded_at) > julianday(d.recon_domain_assigned_at))
         ORDER BY d.hash",
        super::skip_overridden_sql(conn)?
    );
    let mut stmt = conn.prepare(&sql).ctx("recon::db::reassess::stale_by_recon_times")?;
    let rows = stmt
        .query_map([source], |r| r.get(0))
        .ctx("recon::db::reassess::stale_by_recon_times")?
        .collect::<Result<Vec<String>, _>>()
        .ctx("recon::db::reassess::stale_by_recon_times")?;
    Ok(rows)
}

/// A document's `recon_domain_assigned_at` (None: no row or never assigned).
pub fn assigned_at(conn: &Connection, hash: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT recon_domain_assigned_at FROM documents WHERE hash = ?1")
        .ctx("recon::db::reassess::assigned_at")?
        .query_row([hash], |r| r.get::<_, Option<String>>(0))
        .optional()
        .ctx("recon::db::reassess::assigned_at")?
        .flatten())
}
