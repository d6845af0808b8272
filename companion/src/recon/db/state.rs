//! The `companion_state` key/value table.

use super::now;
use crate::error::DbContext;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// Reads a companion_state value.
pub fn state_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    conn.query_row("SELECT value FROM companion_state WHERE key = ?1", [key], |r| r.get(0)).optional().ctx("recon::db::state::state_get")
}

pub fn state_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO companion_state(key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![key, value, now()],
    )
    .ctx("recon::db::state::state_set")?;
    Ok(())
}
