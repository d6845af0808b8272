//! recon.db's side of a push: which documents are pending, and the journal
//! entries around every PeerTube write — `pending` before it, then `applied`
//! together with `peertube_category_pushed_at` in one transaction.

use crate::error::Result;
use crate::journal::{EntryState, Kind};
use crate::peertube::video_id::{self, PathProblem, VideoUuid};
use crate::recon::db::{self as recondb, DomainColumns, NOT_DOCUMENTS};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// A document the push rule selects.
#[derive(Debug, Clone)]
pub struct PushDoc {
    pub hash: String,
    pub path: String,
    pub domain: String,
    pub assigned_at: Option<String>,
}

/// Push rule: a domain, no `peertube_category_pushed_at`, the PeerTube source,
/// no override; oldest assignment first.
pub fn select_pending(conn: &Connection, source: &str, limit: Option<u64>) -> Result<Vec<PushDoc>> {
    // A video a person overrode in PeerTube is never selected (recon::db::overrides).
    let skip = recondb::skip_overridden_sql(conn)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT d.hash, c.path, d.recon_domain, d.recon_domain_assigned_at
         FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.recon_domain IS NOT NULL AND d.peertube_category_pushed_at IS NULL AND c.source = ?1 {skip}
         ORDER BY d.recon_domain_assigned_at, d.rowid LIMIT ?2"
        ))
        .ctx("peertube::ledger::select_pending")?;
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let rows = stmt
        .query_map(params![source, limit], |r| Ok(PushDoc { hash: r.get(0)?, path: r.get(1)?, domain: r.get(2)?, assigned_at: r.get(3)? }))
        .ctx("peertube::ledger::select_pending")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("peertube::ledger::select_pending")?;
    Ok(rows)
}

/// Documents whose push is recorded (pushed_at set), with their expected category.
pub fn select_pushed(conn: &Connection, source: &str) -> Result<Vec<PushDoc>> {
    let mut stmt = conn
        .prepare(
            "SELECT d.hash, c.path, d.recon_domain, d.recon_domain_assigned_at
         FROM documents d JOIN catalogue c ON c.hash = d.hash
         WHERE d.recon_domain IS NOT NULL AND d.peertube_category_pushed_at IS NOT NULL AND c.source = ?1
         ORDER BY d.recon_domain_assigned_at, d.rowid",
        )
        .ctx("peertube::ledger::select_pushed")?;
    let rows = stmt
        .query_map([source], |r| Ok(PushDoc { hash: r.get(0)?, path: r.get(1)?, domain: r.get(2)?, assigned_at: r.get(3)? }))
        .ctx("peertube::ledger::select_pushed")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("peertube::ledger::select_pushed")?;
    Ok(rows)
}

/// A write the push wants to make, once the video's current category is known.
#[derive(Debug, Clone)]
pub struct Intent {
    pub hash: String,
    pub video: VideoUuid,
    pub domain: String,
    pub category: i64,
    /// PeerTube's category before the write.
    pub old: Option<i64>,
    /// A pending entry of an interrupted run for the same write.
    pub prior: Option<Prior>,
}

/// Why a document cannot be pushed at all.
#[derive(Debug, Clone)]
pub enum Unpushable {
    Path(PathProblem),
    UnknownDomain(String),
}

impl std::fmt::Display for Unpushable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unpushable::Path(p) => p.fmt(f),
            Unpushable::UnknownDomain(d) => write!(f, "domain {d:?} is not one of the 18 labels"),
        }
    }
}

/// The video and category of a pending document (pure).
pub fn target_of(doc: &PushDoc) -> std::result::Result<(VideoUuid, i64), Unpushable> {
    let video = video_id::from_path(&doc.path).map_err(Unpushable::Path)?;
    let d = shared_constants::by_label(&doc.domain).ok_or_else(|| Unpushable::UnknownDomain(doc.domain.clone()))?;
    Ok((video, i64::from(d.id)))
}

/// A `pending` video entry left by a run that was killed between journaling a
/// write and confirming it.
#[derive(Debug, Clone)]
pub struct Prior {
    pub entry_id: i64,
    pub run_id: String,
    pub old: Option<i64>,
    pub new: Option<i64>,
    pub hash: Option<String>,
}

pub fn category_of(v: &Value) -> Option<i64> {
    v.get("category").and_then(Value::as_i64)
}

/// The newest pending video entry per video uuid.
pub fn pending_priors(conn: &Connection) -> Result<HashMap<String, Prior>> {
    let mut stmt = conn
        .prepare(&format!("SELECT id, run_id, key, old, new FROM companion_journal WHERE kind = 'video' AND {NOT_DOCUMENTS} AND state = 'pending' ORDER BY id"))
        .ctx("peertube::ledger::pending_priors")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, Option<String>>(3)?, r.get::<_, Option<String>>(4)?))
        })
        .ctx("peertube::ledger::pending_priors")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("peertube::ledger::pending_priors")?;
    let mut out = HashMap::new();
    for (id, run_id, key, old, new) in rows {
        let old: Value = old.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null);
        let new: Value = new.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null);
        out.insert(
            key,
            Prior { entry_id: id, run_id, old: category_of(&old), new: category_of(&new), hash: new.get("hash").and_then(Value::as_str).map(str::to_string) },
        );
    }
    Ok(out)
}

/// Our newest write of each video's category (the journal's latest `video`
/// entry per uuid, any run): what a person's change is measured against.
pub fn last_writes(conn: &Connection) -> Result<HashMap<String, crate::peertube::people::LastWrite>> {
    use crate::peertube::people::LastWrite;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT j.key, j.state, j.new FROM companion_journal j
             JOIN (SELECT max(id) AS id FROM companion_journal WHERE kind = 'video' AND {NOT_DOCUMENTS} AND state <> 'rolled_back' GROUP BY key) m ON m.id = j.id",
        ))
        .ctx("peertube::ledger::last_writes")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?)))
        .ctx("peertube::ledger::last_writes")?
        .collect::<Result<Vec<_>, _>>()
        .ctx("peertube::ledger::last_writes")?;
    Ok(rows.into_iter().map(|(key, state, new)| (key, LastWrite { category: category_of(&parse_json(new)), state: write_state(&state) })).collect())
}

/// [`last_writes_of`]'s lookup of one video (?1): by the journal's key index, as its term says.
fn last_write_of_sql() -> String {
    format!(
        "SELECT state, new FROM companion_journal WHERE kind = 'video' AND {NOT_DOCUMENTS} AND key = ?1 AND state <> 'rolled_back' ORDER BY id DESC LIMIT 1"
    )
}

/// Below this many videos, [`last_writes_of`] looks each one up by key
/// instead of reading every video entry of the journal.
const KEYED_LOOKUPS: usize = 2000;

/// Our newest write of each of `videos` (as [`last_writes`]): one indexed
/// lookup per video for a few (the service's pushes cost what they push, not
/// what the journal holds), the whole journal's for many.
pub fn last_writes_of(conn: &Connection, videos: &[&VideoUuid]) -> Result<HashMap<String, crate::peertube::people::LastWrite>> {
    use crate::peertube::people::LastWrite;
    if videos.len() >= KEYED_LOOKUPS {
        return last_writes(conn);
    }
    let mut stmt = conn.prepare_cached(&last_write_of_sql()).ctx("peertube::ledger::last_writes_of")?;
    let mut out = HashMap::new();
    for v in videos {
        let row: Option<(String, Option<String>)> =
            stmt.query_row([v.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional().ctx("peertube::ledger::last_writes_of")?;
        if let Some((state, new)) = row {
            out.insert(v.to_string(), LastWrite { category: category_of(&parse_json(new)), state: write_state(&state) });
        }
    }
    Ok(out)
}

fn parse_json(text: Option<String>) -> Value {
    text.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null)
}

fn write_state(state: &str) -> crate::peertube::people::WriteState {
    use crate::peertube::people::WriteState;
    match state {
        "applied" => WriteState::Applied,
        "pending" => WriteState::Pending,
        _ => WriteState::Failed,
    }
}

/// What happened to a document row when its push was confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocMark {
    Marked,
    /// Its domain changed (or it was marked pushed by someone else) meanwhile: left alone.
    ChangedMeanwhile,
}

use crate::error::DbContext;
use crate::journal::{record, set_state};

/// Journal writer of one run.
pub struct Ledger {
    pub conn: Connection,
    pub run_id: String,
    pub transport: &'static str,
    /// Normal pushes only mark documents not yet pushed; a reconcile repair re-marks.
    pub require_unpushed: bool,
    /// Videos this run has journaled a write of: their value is ours now.
    written: HashSet<String>,
}

fn video_values(i: &Intent, transport: &str) -> (Value, Value) {
    (
        json!({ "category": i.old, "hash": i.hash, "transport": transport }),
        json!({ "category": i.category, "hash": i.hash, "domain": i.domain, "transport": transport }),
    )
}

impl Ledger {
    pub fn new(conn: Connection, run_id: String, transport: &'static str, require_unpushed: bool) -> Ledger {
        Ledger { conn, run_id, transport, require_unpushed, written: HashSet::new() }
    }

    /// Whether this run has journaled a write of `video` (pending, applied or already set).
    pub fn wrote(&self, video: &VideoUuid) -> bool {
        self.written.contains(video.as_str())
    }

    fn mark_pushed(tx: &Connection, run_id: &str, i: &Intent, require_unpushed: bool, now: &str) -> Result<DocMark> {
        let cur = recondb::domain_columns(tx, &i.hash)?;
        let Some(cur) = cur else { return Ok(DocMark::ChangedMeanwhile) };
        if cur.recon_domain.as_deref() != Some(i.domain.as_str()) || (require_unpushed && cur.peertube_category_pushed_at.is_some()) {
            return Ok(DocMark::ChangedMeanwhile);
        }
        let new = DomainColumns { peertube_category_pushed_at: Some(now.to_string()), ..cur.clone() };
        tx.prepare_cached("UPDATE documents SET peertube_category_pushed_at = ?2 WHERE hash = ?1")
            .ctx("peertube::ledger::mark_pushed")?
            .execute(params![i.hash, now])
            .ctx("peertube::ledger::mark_pushed")?;
        record(tx, run_id, Kind::Documents, &i.hash, &serde_json::to_value(&cur)?, &serde_json::to_value(&new)?, EntryState::Applied)?;
        Ok(DocMark::Marked)
    }

    /// Journals writes as pending before they are made (one transaction);
    /// earlier pending entries for the same videos are closed as superseded.
    pub fn pending(&mut self, items: &[&Intent]) -> Result<Vec<i64>> {
        let (run_id, transport) = (self.run_id.clone(), self.transport);
        let ids = recondb::retry_busy(|| {
            let tx = recondb::write_tx(&mut self.conn)?;
            let mut ids = Vec::with_capacity(items.len());
            for i in items {
                let (old, new) = video_values(i, transport);
                ids.push(record(&tx, &run_id, Kind::Video, i.video.as_str(), &old, &new, EntryState::Pending)?);
                if let Some(p) = &i.prior {
                    let note = format!("not applied when run {} stopped (PeerTube held {:?}); retried by run {run_id}", p.run_id, i.old);
                    set_state(&tx, p.entry_id, EntryState::Failed, Some(&note))?;
                }
            }
            tx.commit().ctx("peertube::ledger::pending")?;
            Ok(ids)
        })?;
        self.written.extend(items.iter().map(|i| i.video.to_string()));
        Ok(ids)
    }

    /// Confirms writes PeerTube accepted: entries applied, documents marked pushed.
    pub fn applied(&mut self, done: &[(i64, &Intent)]) -> Result<Vec<DocMark>> {
        let (run_id, req) = (self.run_id.clone(), self.require_unpushed);
        // This commit need not reach the disk at once: if a power loss drops
        // it, the pending entries (committed durably before the write) remain,
        // and the next run confirms them from PeerTube's current value. That
        // saves an fsync per batch. Pending entries stay fully synchronous.
        self.conn.execute_batch("PRAGMA synchronous = NORMAL").ctx("peertube::ledger::applied")?;
        let res = self.applied_tx(&run_id, req, done);
        self.conn.execute_batch("PRAGMA synchronous = FULL").ctx("peertube::ledger::applied")?;
        res
    }

    fn applied_tx(&mut self, run_id: &str, req: bool, done: &[(i64, &Intent)]) -> Result<Vec<DocMark>> {
        let run_id = run_id.to_string();
        recondb::retry_busy(|| {
            let tx = recondb::write_tx(&mut self.conn)?;
            let now = recondb::now();
            let mut marks = Vec::with_capacity(done.len());
            for (id, i) in done {
                set_state(&tx, *id, EntryState::Applied, None)?;
                marks.push(Self::mark_pushed(&tx, &run_id, i, req, &now)?);
            }
            tx.commit().ctx("peertube::ledger::applied_tx")?;
            Ok(marks)
        })
    }

    /// Videos that already hold the category: nothing is written to PeerTube. With
    /// a prior pending entry (a killed run's write that did land), that entry's
    /// "before" is kept so a rollback restores the true previous category.
    pub fn already_set(&mut self, items: &[&Intent]) -> Result<Vec<DocMark>> {
        let (run_id, transport, req) = (self.run_id.clone(), self.transport, self.require_unpushed);
        let marks = recondb::retry_busy(|| {
            let tx = recondb::write_tx(&mut self.conn)?;
            let now = recondb::now();
            let mut marks = Vec::with_capacity(items.len());
            for i in items {
                let mut it = (*i).clone();
                let note = match &i.prior {
                    Some(p) => {
                        it.old = p.old;
                        set_state(&tx, p.entry_id, EntryState::Failed, Some(&format!("superseded by run {run_id}: the write had landed in PeerTube")))?;
                        format!("written by interrupted run {} (entry {}), confirmed by this run", p.run_id, p.entry_id)
                    }
                    None => "PeerTube already held this category: not written".to_string(),
                };
                let (old, new) = video_values(&it, transport);
                let id = record(&tx, &run_id, Kind::Video, i.video.as_str(), &old, &new, EntryState::Applied)?;
                set_state(&tx, id, EntryState::Applied, Some(&note))?;
                marks.push(Self::mark_pushed(&tx, &run_id, &it, req, &now)?);
            }
            tx.commit().ctx("peertube::ledger::already_set")?;
            Ok(marks)
        })?;
        self.written.extend(items.iter().map(|i| i.video.to_string()));
        Ok(marks)
    }

    /// Closes pending entries whose write did not happen.
    pub fn failed(&mut self, entries: &[(i64, String)]) -> Result<()> {
        recondb::retry_busy(|| {
            let tx = recondb::write_tx(&mut self.conn)?;
            for (id, note) in entries {
                set_state(&tx, *id, EntryState::Failed, Some(note))?;
            }
            tx.commit().ctx("peertube::ledger::failed")?;
            Ok(())
        })
    }

    /// Records a video that could not be written (no pending entry before it).
    pub fn failure(&mut self, key: &str, hash: &str, category: Option<i64>, note: &str) -> Result<()> {
        let (run_id, transport) = (self.run_id.clone(), self.transport);
        recondb::retry_busy(|| {
            let tx = recondb::write_tx(&mut self.conn)?;
            let new = json!({ "category": category, "hash": hash, "transport": transport });
            let id = record(&tx, &run_id, Kind::Video, key, &Value::Null, &new, EntryState::Failed)?;
            set_state(&tx, id, EntryState::Failed, Some(note))?;
            tx.commit().ctx("peertube::ledger::failure")?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peertube::people::WriteState;

    #[test]
    fn a_few_videos_looked_up_by_key_agree_with_the_whole_journal() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(crate::recon::schema::RECON_SCHEMA).unwrap();
        recondb::migrate(&mut conn).unwrap();
        let plan: String = conn.query_row(&format!("EXPLAIN QUERY PLAN {}", last_write_of_sql()), ["v"], |r| r.get(3)).unwrap();
        assert!(plan.contains("companion_journal_by_key"), "one video's lookup is by index: {plan}");
        let v = |n: u8| VideoUuid::parse(&format!("9c9de5e8-0a1e-484a-b099-e80766180a{n:02x}")).unwrap();
        let put = |video: &VideoUuid, cat: Option<i64>, state: EntryState| {
            record(&conn, "run", Kind::Video, video.as_str(), &json!({ "category": null }), &json!({ "category": cat }), state).unwrap();
        };
        put(&v(1), Some(105), EntryState::Applied);
        put(&v(1), Some(107), EntryState::Pending);
        put(&v(2), Some(110), EntryState::Applied);
        put(&v(2), Some(111), EntryState::RolledBack);
        put(&v(3), Some(3), EntryState::Failed);
        let (a, b, c, none) = (v(1), v(2), v(3), v(4));
        let few = last_writes_of(&conn, &[&a, &b, &c, &none]).unwrap();
        let mut all = last_writes(&conn).unwrap();
        all.retain(|k, _| few.contains_key(k));
        assert_eq!(few, all);
        assert_eq!(few.len(), 3, "a video we never wrote has no entry");
        assert_eq!(few[a.as_str()], crate::peertube::people::LastWrite { category: Some(107), state: WriteState::Pending });
        assert_eq!(few[b.as_str()].category, Some(110), "a rolled-back write is not ours any more");
        assert_eq!(few[c.as_str()].state, WriteState::Failed);
    }
}
