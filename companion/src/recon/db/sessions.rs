//! The service's login sessions (`companion_sessions`).

use crate::error::DbContext;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// The service's login sessions (`companion_sessions`). Created on first use
/// too, since a db migrated before the table existed passes `migration_state`.
pub const SESSION_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS companion_sessions (
    id_sha256 TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS companion_sessions_expiry ON companion_sessions(expires_at);
";

pub fn ensure_session_table(conn: &Connection) -> Result<()> {
    conn.execute_batch(SESSION_SCHEMA).ctx("recon::db::sessions::ensure_session_table")?;
    Ok(())
}

/// Inserts a new session; `false` when the key is taken (the caller picks another id).
pub fn session_insert(conn: &Connection, key: &str, data: &str, expires_at: i64) -> Result<bool> {
    let n = conn
        .execute("INSERT OR IGNORE INTO companion_sessions(id_sha256, data, expires_at) VALUES (?1, ?2, ?3)", params![key, data, expires_at])
        .ctx("recon::db::sessions::session_insert")?;
    Ok(n == 1)
}

pub fn session_upsert(conn: &Connection, key: &str, data: &str, expires_at: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO companion_sessions(id_sha256, data, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(id_sha256) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        params![key, data, expires_at],
    )
    .ctx("recon::db::sessions::session_upsert")?;
    Ok(())
}

/// A session's data and expiry, unless it expired before `now` (unix seconds).
pub fn session_get(conn: &Connection, key: &str, now: i64) -> Result<Option<(String, i64)>> {
    conn.query_row("SELECT data, expires_at FROM companion_sessions WHERE id_sha256 = ?1 AND expires_at > ?2", params![key, now], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
    .ctx("recon::db::sessions::session_get")
}

pub fn session_delete(conn: &Connection, key: &str) -> Result<()> {
    conn.execute("DELETE FROM companion_sessions WHERE id_sha256 = ?1", [key]).ctx("recon::db::sessions::session_delete")?;
    Ok(())
}

/// Deletes expired sessions; returns how many.
pub fn session_delete_expired(conn: &Connection, now: i64) -> Result<usize> {
    conn.execute("DELETE FROM companion_sessions WHERE expires_at <= ?1", [now]).ctx("recon::db::sessions::session_delete_expired")
}
