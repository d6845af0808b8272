//! How `companion_journal` is indexed, and the upgrade of a journal from before its `doc` column.
//!
//! Entries are found by (kind, key), except the rows a set-based write
//! journals for `documents`: those carry the document's rowid (`doc`) and
//! are found by it. An index in key (hash) order takes a 220K backfill's rows
//! at random and outgrows SQLite's page cache: that backfill's writes took
//! 3.5 s the first run and 6.3 s the third, against 1.0 s every run by rowid
//! (`recon-companion bench --docs 220000`, statements alone). A lookup by
//! doc also matches the key, so a rowid renumbered by a `VACUUM` can hide
//! an old entry from `explain`'s history but never show another document's;
//! rollback goes by run and key and is not affected.

use super::{columns, has_index};
use crate::error::{DbContext, Result};
use rusqlite::Connection;

/// The journal's lookup indexes; the old (kind, key) index over every entry goes.
const JOURNAL_INDEXES: &str = "
CREATE INDEX IF NOT EXISTS companion_journal_by_key ON companion_journal(kind, key) WHERE kind <> 'documents';
CREATE INDEX IF NOT EXISTS companion_journal_by_doc ON companion_journal(doc) WHERE kind = 'documents' AND doc IS NOT NULL;
CREATE INDEX IF NOT EXISTS companion_journal_doc_key ON companion_journal(key) WHERE kind = 'documents' AND doc IS NULL;
DROP INDEX IF EXISTS companion_journal_key;
";

/// The indexes [`JOURNAL_INDEXES`] creates, by name.
const JOURNAL_INDEX_NAMES: [&str; 3] = ["companion_journal_by_key", "companion_journal_by_doc", "companion_journal_doc_key"];

/// The term a query by (kind, key) of any kind but `documents` carries, so
/// SQLite can use the partial `companion_journal_by_key`: it uses a partial
/// index only where the query's WHERE holds the index's own term.
pub const NOT_DOCUMENTS: &str = "kind <> 'documents'";

/// Whether the journal has its `doc` column and lookup indexes, and not the old (kind, key) one.
pub(super) fn journal_layout(conn: &Connection) -> Result<bool> {
    if !journal_has_doc(conn)? || has_index(conn, "companion_journal_key")? {
        return Ok(false);
    }
    for name in JOURNAL_INDEX_NAMES {
        if !has_index(conn, name)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the journal has the `doc` column (a journal from before it is read by key alone).
pub fn journal_has_doc(conn: &Connection) -> Result<bool> {
    Ok(columns(conn, "companion_journal")?.iter().any(|c| c == "doc"))
}

/// Brings the journal to its layout inside `migrate`'s transaction; true when
/// something was changed. Adding a nullable column rewrites no row, and the
/// entries from before it stay found by key (`companion_journal_doc_key`),
/// so the upgrade costs one index build, not a pass over the rows.
pub(super) fn upgrade_journal(tx: &Connection) -> Result<bool> {
    if journal_layout(tx)? {
        return Ok(false);
    }
    if !journal_has_doc(tx)? {
        tx.execute("ALTER TABLE companion_journal ADD COLUMN doc INTEGER", []).ctx("recon::db::migrate: adding companion_journal.doc")?;
    }
    tx.execute_batch(JOURNAL_INDEXES).ctx("recon::db::migrate: the journal's indexes")?;
    Ok(true)
}

/// The companion's tables as a release before `doc` created them (tests of the upgrade).
#[cfg(test)]
pub const JOURNAL_BEFORE_DOC: &str = "
    CREATE TABLE companion_runs (run_id TEXT PRIMARY KEY, command TEXT NOT NULL, args TEXT NOT NULL, state TEXT NOT NULL,
        started_at TEXT NOT NULL, finished_at TEXT, summary TEXT, report_path TEXT, rolled_back_by TEXT, pid INTEGER);
    CREATE TABLE companion_journal (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
        old TEXT, new TEXT, state TEXT NOT NULL, at TEXT NOT NULL, note TEXT);
    CREATE INDEX companion_journal_run ON companion_journal(run_id, id);
    CREATE INDEX companion_journal_key ON companion_journal(kind, key);
    CREATE TABLE companion_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recon::db::{migrate, migration_state};

    #[test]
    fn a_journal_from_before_doc_is_upgraded_once_and_keeps_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("recon.db")).expect("db");
        conn.execute_batch(crate::recon::schema::RECON_SCHEMA).expect("RECON's schema");
        conn.execute_batch(JOURNAL_BEFORE_DOC).expect("the old tables");
        conn.execute(
            "INSERT INTO companion_journal(run_id, kind, key, old, new, state, at) VALUES ('r', 'documents', 'a', '{}', '{}', 'applied', 't'), ('r', 'video', 'v', '{}', '{}', 'applied', 't')",
            [],
        )
        .expect("old rows");
        let st = migration_state(&conn).expect("state");
        assert!(!st.journal_layout && !st.ok(), "{st:?}");

        let applied = migrate(&mut conn).expect("migrate");
        assert!(applied.iter().any(|a| a.contains("companion_journal.doc")), "{applied:?}");
        let st = migration_state(&conn).expect("state");
        assert!(st.journal_layout, "{st:?}");
        assert!(!has_index(&conn, "companion_journal_key").expect("index"), "the old index is gone");
        for name in JOURNAL_INDEX_NAMES {
            assert!(has_index(&conn, name).expect("index"), "{name}");
        }
        let rows: i64 = conn.query_row("SELECT count(*) FROM companion_journal WHERE doc IS NULL", [], |r| r.get(0)).expect("rows");
        assert_eq!(rows, 2, "the old rows are kept, found by key");
        assert!(!migrate(&mut conn).expect("again").iter().any(|a| a.contains("companion_journal")), "done once");
        assert!(upgrade_journal(&conn).is_ok_and(|changed| !changed));
    }

    #[test]
    fn a_new_journal_is_created_in_its_layout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("recon.db")).expect("db");
        conn.execute_batch(crate::recon::schema::RECON_SCHEMA).expect("RECON's schema");
        let applied = migrate(&mut conn).expect("migrate");
        assert!(!applied.iter().any(|a| a.contains("companion_journal.doc")), "a new table is not an upgrade: {applied:?}");
        assert!(migration_state(&conn).expect("state").ok());
    }
}
