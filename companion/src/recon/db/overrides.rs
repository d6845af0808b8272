//! The `companion_overrides` table (videos whose category a person set in PeerTube to something outside our 18, or cleared) and the one rule every machine write obeys: rows a person decided (`manual_assigned`) and overridden videos are left alone.

use crate::error::{DbContext, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// DDL of the table; part of the companion's schema (`migrate`, `ensure_migrated`).
pub const OVERRIDES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS companion_overrides (
    video TEXT PRIMARY KEY,         -- PeerTube video uuid
    hash TEXT NOT NULL,             -- the document it belongs to
    category INTEGER,               -- what the person set (NULL: cleared)
    changed_by TEXT,                -- PeerTube account, when the plugin could tell
    changed_at TEXT,                -- when the person changed it, when known
    recorded_at TEXT NOT NULL,
    run_id TEXT NOT NULL            -- the run that recorded it (rollback removes it)
);
CREATE INDEX IF NOT EXISTS companion_overrides_hash ON companion_overrides(hash);
";

/// SQL condition over `documents d`: true for a row no machine write may touch
/// (`manual_assigned`, or its video overridden in PeerTube). Selections of the
/// push, the repair and the reassessment add `AND NOT {LEFT_ALONE_SQL}`.
pub const LEFT_ALONE_SQL: &str = "(d.recon_domain_status = 'manual_assigned' OR EXISTS (SELECT 1 FROM companion_overrides o WHERE o.hash = d.hash))";

/// SQL condition over `documents d`: its video is overridden in PeerTube.
pub const OVERRIDDEN_SQL: &str = "EXISTS (SELECT 1 FROM companion_overrides o WHERE o.hash = d.hash)";

/// One overridden video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub video: String,
    pub hash: String,
    pub category: Option<i64>,
    pub changed_by: Option<String>,
    pub changed_at: Option<String>,
    pub recorded_at: String,
    pub run_id: String,
}

/// Whether recon.db has the table yet (a database migrated by an older version has not).
pub fn overrides_present(conn: &Connection) -> Result<bool> {
    super::has_table(conn, "companion_overrides")
}

/// `AND NOT …` for a selection over `documents d` that must skip overridden videos
/// (empty when the table does not exist yet: then nothing is overridden).
pub fn skip_overridden_sql(conn: &Connection) -> Result<&'static str> {
    Ok(if overrides_present(conn)? { "AND NOT EXISTS (SELECT 1 FROM companion_overrides o WHERE o.hash = d.hash)" } else { "" })
}

/// The pure rule: a row with this status, overridden or not, is left alone by every machine write.
pub fn left_alone(status: Option<&str>, overridden: bool) -> bool {
    overridden || status == Some("manual_assigned")
}

/// Whether the machine must leave document `hash` alone (see [`left_alone`]).
pub fn is_left_alone(conn: &Connection, hash: &str) -> Result<bool> {
    let status: Option<Option<String>> =
        conn.query_row("SELECT recon_domain_status FROM documents WHERE hash = ?1", [hash], |r| r.get(0)).optional().ctx_key("reading the status of", hash)?;
    Ok(left_alone(status.flatten().as_deref(), is_overridden(conn, hash)?))
}

/// Whether document `hash`'s video is overridden in PeerTube.
pub fn is_overridden(conn: &Connection, hash: &str) -> Result<bool> {
    if !overrides_present(conn)? {
        return Ok(false);
    }
    Ok(conn
        .query_row("SELECT 1 FROM companion_overrides WHERE hash = ?1", [hash], |_| Ok(()))
        .optional()
        .ctx_key("looking up the override of", hash)?
        .is_some())
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Override> {
    Ok(Override {
        video: r.get(0)?,
        hash: r.get(1)?,
        category: r.get(2)?,
        changed_by: r.get(3)?,
        changed_at: r.get(4)?,
        recorded_at: r.get(5)?,
        run_id: r.get(6)?,
    })
}

const COLUMNS: &str = "video, hash, category, changed_by, changed_at, recorded_at, run_id";

/// Every override, newest first.
pub fn list_overrides(conn: &Connection) -> Result<Vec<Override>> {
    if !overrides_present(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM companion_overrides ORDER BY recorded_at DESC, video")).ctx("recon::db::list_overrides")?;
    let rows = stmt.query_map([], from_row).and_then(|r| r.collect::<Result<Vec<_>, _>>()).ctx("recon::db::list_overrides")?;
    Ok(rows)
}

/// The override of one video.
pub fn get_override(conn: &Connection, video: &str) -> Result<Option<Override>> {
    if !overrides_present(conn)? {
        return Ok(None);
    }
    conn.query_row(&format!("SELECT {COLUMNS} FROM companion_overrides WHERE video = ?1"), [video], from_row)
        .optional()
        .ctx_key("reading the override of", video)
}

/// Records (or replaces) an override; call inside the transaction that journals it.
pub fn put_override(tx: &Connection, o: &Override) -> Result<()> {
    tx.execute(
        "INSERT INTO companion_overrides(video, hash, category, changed_by, changed_at, recorded_at, run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(video) DO UPDATE SET hash = excluded.hash, category = excluded.category, changed_by = excluded.changed_by,
             changed_at = excluded.changed_at, recorded_at = excluded.recorded_at, run_id = excluded.run_id",
        params![o.video, o.hash, o.category, o.changed_by, o.changed_at, o.recorded_at, o.run_id],
    )
    .ctx_key("recording the override of", &o.video)?;
    Ok(())
}

/// Removes a video's override; true when there was one.
pub fn delete_override(tx: &Connection, video: &str) -> Result<bool> {
    Ok(tx.execute("DELETE FROM companion_overrides WHERE video = ?1", [video]).ctx_key("removing the override of", video)? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_leaves_people_alone() {
        assert!(left_alone(Some("manual_assigned"), false));
        assert!(left_alone(Some("assigned"), true));
        assert!(left_alone(None, true));
        assert!(!left_alone(Some("assigned"), false));
        assert!(!left_alone(Some("tied_pass_2"), false));
        assert!(!left_alone(None, false));
    }

    #[test]
    fn overrides_round_trip() {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch("CREATE TABLE documents (hash TEXT PRIMARY KEY, recon_domain_status TEXT);").expect("schema");
        assert!(!is_overridden(&c, "h1").expect("no table yet"));
        assert!(list_overrides(&c).expect("no table").is_empty());
        c.execute_batch(OVERRIDES_SCHEMA).expect("schema");
        c.execute_batch("INSERT INTO documents VALUES ('h1', 'assigned'), ('h2', 'manual_assigned'), ('h3', 'assigned');").expect("rows");
        let o = Override {
            video: "v1".into(),
            hash: "h1".into(),
            category: Some(5),
            changed_by: Some("moderator".into()),
            changed_at: None,
            recorded_at: "t".into(),
            run_id: "r".into(),
        };
        put_override(&c, &o).expect("put");
        assert!(is_left_alone(&c, "h1").expect("h1"));
        assert!(is_left_alone(&c, "h2").expect("h2"));
        assert!(!is_left_alone(&c, "h3").expect("h3"));
        let n: i64 = c.query_row(&format!("SELECT count(*) FROM documents d WHERE NOT {LEFT_ALONE_SQL}"), [], |r| r.get(0)).expect("count");
        assert_eq!(n, 1);
        assert_eq!(get_override(&c, "v1").expect("get"), Some(o));
        assert!(delete_override(&c, "v1").expect("delete"));
        assert!(!delete_override(&c, "v1").expect("again"));
        assert!(!is_left_alone(&c, "h1").expect("h1"));
    }
}
