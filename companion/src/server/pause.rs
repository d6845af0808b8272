//! The push kill switch: one row of `companion_state`, so it survives restarts and
//! the CLI (`pause-push`/`resume-push`) and the dashboard share it.

use crate::error::DbContext;
use crate::error::Result;
use crate::recon::db as recondb;
use rusqlite::Connection;

/// `companion_state` key of the kill switch.
pub const KEY: &str = "push_paused";

/// The stored switch: `true` stops every push of the service.
pub fn is_paused(conn: &Connection) -> Result<bool> {
    Ok(parse(recondb::state_get(conn, KEY)?.as_deref()))
}

/// Anything but an explicit "true" means not paused: a missing row is the default.
pub fn parse(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), Some("true"))
}

pub fn set(conn: &Connection, paused: bool) -> Result<()> {
    recondb::retry_busy(|| recondb::state_set(conn, KEY, if paused { "true" } else { "false" }))
}

/// When the switch last changed (companion_state.updated_at), if ever.
pub fn changed_at(conn: &Connection) -> Result<Option<String>> {
    use rusqlite::OptionalExtension;
    conn.query_row("SELECT updated_at FROM companion_state WHERE key = ?1", [KEY], |r| r.get(0)).optional().ctx("server::pause::changed_at")
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn only_true_pauses() {
        assert!(parse(Some("true")));
        assert!(parse(Some(" true\n")));
        assert!(!parse(Some("false")));
        assert!(!parse(Some("1")));
        assert!(!parse(None));
    }
}
