//! The counts the status view shows.

use crate::error::DbContext;
use crate::error::Result;
use rusqlite::Connection;

fn count(conn: &Connection, sql: &str, source: Option<&str>) -> Result<u64> {
    let n: i64 = match source {
        Some(s) => conn.query_row(sql, [s], |r| r.get(0)).ctx("recon::db::counts::count")?,
        None => conn.query_row(sql, [], |r| r.get(0)).ctx("recon::db::counts::count")?,
    };
    Ok(n as u64)
}

pub fn count_complete_stream(conn: &Connection, source: &str) -> Result<u64> {
    count(conn, "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash WHERE d.status = 'complete' AND c.source = ?1", Some(source))
}

pub fn count_unassigned_stream(conn: &Connection, source: &str) -> Result<u64> {
    count(
        conn,
        "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.status = 'complete' AND c.source = ?1 AND d.recon_domain IS NULL",
        Some(source),
    )
}

pub fn count_unpushed_stream(conn: &Connection, source: &str) -> Result<u64> {
    count(
        conn,
        "SELECT count(*) FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.recon_domain IS NOT NULL AND d.peertube_category_pushed_at IS NULL AND c.source = ?1",
        Some(source),
    )
}

pub fn count_pushed(conn: &Connection) -> Result<u64> {
    count(conn, "SELECT count(*) FROM documents WHERE peertube_category_pushed_at IS NOT NULL", None)
}

/// (status, documents) for every non-NULL `recon_domain_status`, by name.
pub fn counts_by_status(conn: &Connection) -> Result<Vec<(String, u64)>> {
    grouped(
        conn,
        "SELECT recon_domain_status, count(*) FROM documents WHERE recon_domain_status IS NOT NULL GROUP BY 1 ORDER BY 1",
        "recon::db::counts::counts_by_status",
    )
}

/// (domain, documents) for every non-NULL `recon_domain`, most documents first.
pub fn counts_by_domain(conn: &Connection) -> Result<Vec<(String, u64)>> {
    grouped(
        conn,
        "SELECT recon_domain, count(*) FROM documents WHERE recon_domain IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1",
        "recon::db::counts::counts_by_domain",
    )
}

/// The (key, count) rows of a `GROUP BY` query; `op` names the caller in errors.
fn grouped(conn: &Connection, sql: &str, op: &'static str) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare(sql).ctx(op)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))).ctx(op)?.collect::<Result<Vec<_>, _>>().ctx(op)?;
    Ok(rows)
}
