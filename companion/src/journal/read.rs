//! Reading the journal: a run's entries (all, the first page, its rows of recon.db a page at a time, all but those rows) and one key's history.

use super::{parse_json, Entry, EntryState, Kind};
use crate::error::DbContext;
use crate::error::{Error, Result};
use crate::recon::db::{journal_has_doc, NOT_DOCUMENTS};
use rusqlite::{params, Connection};
use serde_json::Value;

/// A run's entries in the order they were made.
pub fn entries(conn: &Connection, run_id: &str) -> Result<Vec<Entry>> {
    entries_where(conn, "run_id = ?1 ORDER BY id", params![run_id])
}

/// A run's first `limit` entries in the order they were made (a page of a run that may hold 220,000).
pub fn first_entries(conn: &Connection, run_id: &str, limit: usize) -> Result<Vec<Entry>> {
    entries_where(conn, "run_id = ?1 ORDER BY id LIMIT ?2", params![run_id, limit as i64])
}

/// A run's entries other than rows of recon.db (`documents`, `catalogue`),
/// in the order they were made: concept dirs, videos, overrides.
pub fn entries_except_rows(conn: &Connection, run_id: &str) -> Result<Vec<Entry>> {
    entries_where(conn, "run_id = ?1 AND kind NOT IN ('documents', 'catalogue') ORDER BY id", params![run_id])
}

/// Up to `limit` of a run's applied row entries (`documents`, `catalogue`)
/// made before entry `before`, newest first: a rollback reads a run of
/// 220,000 rows a page at a time, not all at once.
pub fn row_entries_before(conn: &Connection, run_id: &str, before: i64, limit: usize) -> Result<Vec<Entry>> {
    entries_where(
        conn,
        "run_id = ?1 AND id < ?2 AND kind IN ('documents', 'catalogue') AND state = 'applied' ORDER BY id DESC LIMIT ?3",
        params![run_id, before, limit as i64],
    )
}

fn entries_where(conn: &Connection, filter: &str, args: impl rusqlite::Params) -> Result<Vec<Entry>> {
    let what = "engine::journal::entries";
    let mut stmt = conn.prepare(&format!("SELECT id, run_id, kind, key, old, new, state, at, note FROM companion_journal WHERE {filter}")).ctx(what)?;
    let rows = stmt
        .query_map(args, |r| {
            let kind: String = r.get(2)?;
            let state: String = r.get(6)?;
            Ok((r.get(0)?, r.get(1)?, kind, r.get(3)?, r.get(4)?, r.get(5)?, state, r.get(7)?, r.get(8)?))
        })
        .ctx(what)?
        .collect::<Result<Vec<(i64, String, String, String, Option<String>, Option<String>, String, String, Option<String>)>, _>>()
        .ctx(what)?;
    rows.into_iter()
        .map(|(id, run_id, kind, key, old, new, state, at, note)| {
            Ok(Entry {
                id,
                run_id,
                kind: Kind::parse(&kind).ok_or_else(|| Error::Other(format!("journal entry {id}: unknown kind {kind:?}")))?,
                key,
                old: parse_json(old),
                new: parse_json(new),
                state: EntryState::parse(&state).ok_or_else(|| Error::Other(format!("journal entry {id}: unknown state {state:?}")))?,
                at,
                note,
            })
        })
        .collect()
}

/// One past change of a key: (run id, at, old, new, state).
pub type HistoryRow = (String, String, Value, Value, String);

/// Latest journal entries that touched one key (e.g. a document hash), newest first.
pub fn history(conn: &Connection, kind: Kind, key: &str, limit: u64) -> Result<Vec<HistoryRow>> {
    let sql = history_sql(kind, journal_has_doc(conn)?);
    let mut stmt = conn.prepare(&sql).ctx("engine::journal::history")?;
    let rows = stmt
        .query_map(params![kind.as_str(), key, limit as i64], |r| Ok((r.get(0)?, r.get(1)?, parse_json(r.get(2)?), parse_json(r.get(3)?), r.get(4)?)))
        .ctx("engine::journal::history")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("engine::journal::history")?;
    Ok(rows)
}

/// [`history`]'s query (?1 kind, ?2 key, ?3 limit) for a journal with or
/// without its `doc` column; each names the partial indexes' own terms
/// (`recon::db::journal_layout`).
pub fn history_sql(kind: Kind, has_doc: bool) -> String {
    if kind != Kind::Documents {
        format!("SELECT run_id, at, old, new, state FROM companion_journal WHERE kind = ?1 AND {NOT_DOCUMENTS} AND key = ?2 ORDER BY id DESC LIMIT ?3")
    } else if has_doc {
        // A set-based write's rows by the document's rowid, the others by key.
        "SELECT run_id, at, old, new, state FROM (
             SELECT id, run_id, at, old, new, state FROM companion_journal
              WHERE kind = 'documents' AND doc IS NOT NULL AND doc IN (SELECT rowid FROM documents WHERE hash = ?2) AND key = ?2
             UNION ALL
             SELECT id, run_id, at, old, new, state FROM companion_journal WHERE kind = 'documents' AND doc IS NULL AND key = ?2)
          ORDER BY id DESC LIMIT ?3"
            .to_string()
    } else {
        // A journal from before `doc` (read before `migrate` upgraded it): its (kind, key) index.
        "SELECT run_id, at, old, new, state FROM companion_journal WHERE kind = ?1 AND key = ?2 ORDER BY id DESC LIMIT ?3".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{batch, record, start_run};

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
        let rows = st.query_map(rusqlite::params!["documents", "h", 10], |r| r.get::<_, String>(3)).expect("plan");
        rows.collect::<std::result::Result<Vec<_>, _>>().expect("plan rows").join(" | ")
    }

    #[test]
    fn history_finds_every_entry_before_and_after_the_journal_upgrade_by_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("recon.db")).expect("db");
        conn.execute_batch(crate::recon::schema::RECON_SCHEMA).expect("RECON's schema");
        conn.execute_batch(crate::recon::db::JOURNAL_BEFORE_DOC).expect("the old tables");
        for h in ["a", "b"] {
            conn.execute("INSERT INTO documents(hash, filename) VALUES (?1, 'f')", [h]).expect("row");
        }
        let old_run = start_run(&conn, "backfill", &serde_json::json!({})).expect("run");
        record(
            &conn,
            &old_run,
            Kind::Documents,
            "a",
            &serde_json::json!({"recon_domain": null}),
            &serde_json::json!({"recon_domain": "Medical"}),
            EntryState::Applied,
        )
        .expect("old entry");
        record(&conn, &old_run, Kind::Video, "v1", &serde_json::json!({"category": 1}), &serde_json::json!({"category": 101}), EntryState::Applied)
            .expect("old entry");
        assert_eq!(history(&conn, Kind::Documents, "a", 10).expect("history before").len(), 1, "read by key before the upgrade");
        crate::recon::db::migrate(&mut conn).expect("the upgrade");

        // A set-based write's row carries the rowid; a row-at-a-time one does not.
        let run = start_run(&conn, "backfill", &serde_json::json!({})).expect("run");
        let w = [batch::DomainWrite { hash: "a", domain: Some("Logistics"), status: "assigned", doc: None }];
        batch::write_domains(&mut conn, &run, &w, batch::Guard::DomainUnset).expect("set-based write");
        record(
            &conn,
            &run,
            Kind::Documents,
            "a",
            &serde_json::json!({"recon_domain": "Logistics"}),
            &serde_json::json!({"recon_domain": "Water"}),
            EntryState::Applied,
        )
        .expect("row entry");
        record(&conn, &run, Kind::Documents, "b", &serde_json::json!({}), &serde_json::json!({"recon_domain": "Medical"}), EntryState::Applied)
            .expect("other doc");
        let docs: Vec<Option<i64>> = {
            let mut st = conn.prepare("SELECT doc FROM companion_journal WHERE kind = 'documents' AND key = 'a' ORDER BY id").expect("prepare");
            st.query_map([], |r| r.get(0)).expect("query").collect::<std::result::Result<_, _>>().expect("rows")
        };
        let rowid_a: i64 = conn.query_row("SELECT rowid FROM documents WHERE hash = 'a'", [], |r| r.get(0)).expect("rowid");
        assert_eq!(docs, vec![None, Some(rowid_a), None]);

        let h = history(&conn, Kind::Documents, "a", 10).expect("history");
        let news: Vec<&serde_json::Value> = h.iter().map(|r| &r.3["recon_domain"]).collect();
        assert_eq!(news, vec![&serde_json::json!("Water"), &serde_json::json!("Logistics"), &serde_json::json!("Medical")], "all three, newest first, not b's");
        assert_eq!(history(&conn, Kind::Documents, "a", 2).expect("limit").len(), 2);
        assert_eq!(history(&conn, Kind::Video, "v1", 10).expect("video").len(), 1);

        // Every lookup is by an index, none scans the journal.
        for kind in [Kind::Documents, Kind::Video] {
            let p = plan(&conn, &history_sql(kind, true));
            assert!(!p.contains("SCAN companion_journal"), "{kind:?}: {p}");
        }
        let p = plan(&conn, &history_sql(Kind::Documents, true));
        assert!(p.contains("companion_journal_by_doc") && p.contains("companion_journal_doc_key"), "{p}");
        let p = plan(&conn, &history_sql(Kind::Video, true));
        assert!(p.contains("companion_journal_by_key"), "{p}");
    }
}
