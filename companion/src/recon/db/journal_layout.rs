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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{self, EntryState, Kind};
    use crate::recon::db::{migrate, migration_state};
    use serde_json::json;

    /// The companion's tables as a release before `doc` created them.
    const BEFORE_DOC: &str = "
        CREATE TABLE companion_runs (run_id TEXT PRIMARY KEY, command TEXT NOT NULL, args TEXT NOT NULL, state TEXT NOT NULL,
            started_at TEXT NOT NULL, finished_at TEXT, summary TEXT, report_path TEXT, rolled_back_by TEXT, pid INTEGER);
        CREATE TABLE companion_journal (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
            old TEXT, new TEXT, state TEXT NOT NULL, at TEXT NOT NULL, note TEXT);
        CREATE INDEX companion_journal_run ON companion_journal(run_id, id);
        CREATE INDEX companion_journal_key ON companion_journal(kind, key);
        CREATE TABLE companion_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);";

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
        let rows = st.query_map(rusqlite::params!["documents", "h", 10], |r| r.get::<_, String>(3)).expect("plan");
        rows.collect::<std::result::Result<Vec<_>, _>>().expect("plan rows").join(" | ")
    }

    #[test]
    fn a_journal_from_before_doc_is_upgraded_and_every_entry_stays_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("recon.db")).expect("db");
        conn.execute_batch(crate::recon::schema::RECON_SCHEMA).expect("RECON's schema");
        conn.execute_batch(BEFORE_DOC).expect("the old tables");
        for h in ["a", "b"] {
            conn.execute("INSERT INTO documents(hash, filename) VALUES (?1, 'f')", [h]).expect("row");
        }
        let old_run = journal::start_run(&conn, "backfill", &json!({})).expect("run");
        journal::record(&conn, &old_run, Kind::Documents, "a", &json!({"recon_domain": null}), &json!({"recon_domain": "Medical"}), EntryState::Applied)
            .expect("old entry");
        journal::record(&conn, &old_run, Kind::Video, "v1", &json!({"category": 1}), &json!({"category": 101}), EntryState::Applied).expect("old entry");
        assert_eq!(journal::history(&conn, Kind::Documents, "a", 10).expect("history before").len(), 1, "read by key before the upgrade");
        let st = migration_state(&conn).expect("state");
        assert!(!st.journal_layout && !st.ok(), "{st:?}");

        let applied = migrate(&mut conn).expect("migrate");
        assert!(applied.iter().any(|a| a.contains("companion_journal.doc")), "{applied:?}");
        let st = migration_state(&conn).expect("state");
        assert!(st.journal_layout && st.companion_tables, "{st:?}");
        assert!(!has_index(&conn, "companion_journal_key").expect("index"), "the old index is gone");
        assert!(!migrate(&mut conn).expect("again").iter().any(|a| a.contains("companion_journal")), "idempotent");

        // A set-based write's row carries the rowid; a row-at-a-time one does not.
        let run = journal::start_run(&conn, "backfill", &json!({})).expect("run");
        let w = [crate::journal::batch::DomainWrite { hash: "a", domain: Some("Logistics"), status: "assigned" }];
        crate::journal::batch::write_domains(&mut conn, &run, &w, crate::journal::batch::Guard::DomainUnset).expect("set-based write");
        journal::record(&conn, &run, Kind::Documents, "a", &json!({"recon_domain": "Logistics"}), &json!({"recon_domain": "Water"}), EntryState::Applied)
            .expect("row entry");
        journal::record(&conn, &run, Kind::Documents, "b", &json!({}), &json!({"recon_domain": "Medical"}), EntryState::Applied).expect("other doc");
        let docs: Vec<Option<i64>> = {
            let mut st = conn.prepare("SELECT doc FROM companion_journal WHERE kind = 'documents' AND key = 'a' ORDER BY id").expect("prepare");
            st.query_map([], |r| r.get(0)).expect("query").collect::<std::result::Result<_, _>>().expect("rows")
        };
        let rowid_a: i64 = conn.query_row("SELECT rowid FROM documents WHERE hash = 'a'", [], |r| r.get(0)).expect("rowid");
        assert_eq!(docs, vec![None, Some(rowid_a), None]);

        let h = journal::history(&conn, Kind::Documents, "a", 10).expect("history");
        let news: Vec<&serde_json::Value> = h.iter().map(|r| &r.3["recon_domain"]).collect();
        assert_eq!(news, vec![&json!("Water"), &json!("Logistics"), &json!("Medical")], "all three, newest first, not b's");
        assert_eq!(journal::history(&conn, Kind::Documents, "a", 2).expect("limit").len(), 2);
        assert_eq!(journal::history(&conn, Kind::Video, "v1", 10).expect("video").len(), 1);

        // Every lookup is by an index, none scans the journal.
        for kind in [Kind::Documents, Kind::Video] {
            let p = plan(&conn, &journal::history_sql(kind, true));
            assert!(!p.contains("SCAN companion_journal"), "{kind:?}: {p}");
        }
        let p = plan(&conn, &journal::history_sql(Kind::Documents, true));
        assert!(p.contains("companion_journal_by_doc") && p.contains("companion_journal_doc_key"), "{p}");
        let p = plan(&conn, &journal::history_sql(Kind::Video, true));
        assert!(p.contains("companion_journal_by_key"), "{p}");
    }
}
