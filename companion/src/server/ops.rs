//! What the dashboard and the API do, shared by both: validate input, assign by
//! hand, pause pushes, roll back, explain. Handlers only translate HTTP.

use crate::engine::rollback::{self, RollbackSummary};
use crate::error::{Error, Result};
use crate::journal::rollback::{VideoRestore, VideoRestorer};
use crate::journal::run::Run;
use crate::journal::{self, RunRow};
use crate::recon::concepts;
use crate::recon::db as recondb;
use crate::server::pause;
use crate::server::push_queue::PushResult;
use crate::server::queries;
use crate::server::state::AppState;
use serde::Serialize;
use serde_json::json;
use shared_constants::Domain;

/// A document hash from a URL, by the rule of `recon::hash`: 1 to 128 ASCII
/// letters and digits, taken exactly as given (no trimming, case kept);
/// anything else is refused before it can reach a path or a query.
pub fn parse_hash(raw: &str) -> Result<String> {
    if concepts::is_valid_hash(raw) {
        Ok(raw.to_string())
    } else {
        Err(Error::BadHash(raw.chars().take(80).collect()))
    }
}

/// A domain given as its label, its slug or its category id (100–117).
pub fn parse_domain(raw: &str) -> Result<&'static Domain> {
    let r = raw.trim();
    shared_constants::by_label(r)
        .or_else(|| shared_constants::by_slug(r))
        .or_else(|| r.parse::<u16>().ok().and_then(shared_constants::by_id))
        .ok_or_else(|| Error::BadDomain(raw.chars().take(80).collect()))
}

/// What happened to a push attempted right after a manual assignment.
#[derive(Debug, Clone, Serialize)]
pub struct PushState {
    /// `pushed`, `paused` (kill switch on: queued), `failed` (queued for retry) or `not_pushable`.
    pub state: &'static str,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Assigned {
    pub hash: String,
    pub domain: &'static str,
    pub category_id: u16,
    pub status: &'static str,
    pub run_id: String,
    pub previous_domain: Option<String>,
    pub previous_status: Option<String>,
    pub push: PushState,
}

/// Sets `manual_assigned` (journaled in a run of its own) and pushes at once
/// unless pushes are paused; a failed push stays pending and is retried.
pub async fn assign(st: &AppState, raw_hash: &str, raw_domain: &str, who: &str) -> Result<Assigned> {
    let hash = parse_hash(raw_hash)?;
    let domain = parse_domain(raw_domain)?;
    let who = who.to_string();
    let out = st
        .blocking(move |st| {
            let _gate = st.writer_gate();
            let mut conn = recondb::open(&st.env.recon_db)?;
            if !queries::document_exists(&conn, &hash)? {
                return Err(Error::NotFound(format!("document {hash}")));
            }
            let run = Run::begin(&st.env, &mut conn, "manual-assign", json!({ "hash": hash, "domain": domain.label, "by": who }))?;
            let before = match queries::write_manual(&mut conn, &run.id, &hash, domain.label) {
                Ok(b) => b,
                Err(e) => {
                    let _ = run.finish(&st.env, &conn, "failed", &json!({ "error": e.to_string() }));
                    return Err(e);
                }
            };
            let run_id = run.id.clone();
            run.finish(&st.env, &conn, "done", &json!({ "written": 1, "hash": hash, "domain": domain.label, "by": who }))?;
            // The writer lock is released here (the run is finished): the push takes its own.
            let paused = pause::is_paused(&conn)?;
            st.note_paused(paused);
            let now = chrono::Utc::now().timestamp();
            let push = if paused {
                st.retry.lock().unwrap_or_else(|p| p.into_inner()).add(&hash, now);
                PushState { state: "paused", message: Some("pushes are paused; it will be pushed when they resume".into()) }
            } else {
                push_one(&st, &hash, now)
            };
            save_retry(&st, &conn);
            Ok(Assigned {
                hash,
                domain: domain.label,
                category_id: domain.id,
                status: "manual_assigned",
                run_id,
                previous_domain: before.recon_domain,
                previous_status: before.recon_domain_status,
                push,
            })
        })
        .await?;
    st.refresh_snapshot().await.ok();
    Ok(out)
}

fn push_one(st: &AppState, hash: &str, now: i64) -> PushState {
    let results = st.pusher.push(&[hash.to_string()]);
    let r = match results {
        Ok(mut v) => v.pop().unwrap_or_else(|| PushResult::failed(hash, "the pusher returned no result", false)),
        Err(e) => PushResult::failed(hash, e.to_string(), false),
    };
    st.metrics.count_push(r.ok, 1);
    let mut q = st.retry.lock().unwrap_or_else(|p| p.into_inner());
    if r.ok {
        q.succeeded(hash);
        PushState { state: "pushed", message: None }
    } else if r.permanent {
        q.succeeded(hash);
        PushState { state: "not_pushable", message: r.message }
    } else {
        q.failed(hash, r.message.as_deref(), false, now);
        PushState { state: "failed", message: r.message }
    }
}

/// Persists the retry queue; a failure is logged, never fatal (the CLI's
/// --push-pending finds every unpushed document anyway).
pub fn save_retry(st: &AppState, _read: &rusqlite::Connection) {
    let q = st.retry.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let res = recondb::open(&st.env.recon_db).and_then(|c| q.save(&c));
    if let Err(e) = res {
        tracing::warn!(error = %e, "could not save the push retry queue");
    }
}

/// Turns the kill switch on or off (also what `pause-push`/`resume-push` write).
pub async fn set_paused(st: &AppState, paused: bool, who: &str) -> Result<bool> {
    let who = who.to_string();
    st.blocking(move |st| {
        let conn = recondb::open(&st.env.recon_db)?;
        pause::set(&conn, paused)?;
        tracing::warn!(paused, by = %who, "push kill switch changed");
        st.note_paused(paused);
        Ok(())
    })
    .await?;
    if !paused {
        st.kick_worker();
    }
    Ok(paused)
}

pub async fn runs(st: &AppState, limit: u64) -> Result<Vec<RunRow>> {
    st.blocking(move |st| {
        let conn = st.pool.get().map_err(|e| Error::Other(format!("recon db pool: {e}")))?;
        if !recondb::migration_state(&conn)?.companion_tables {
            return Ok(Vec::new());
        }
        journal::list_runs(&conn, limit)
    })
    .await
}

/// A run and its first `limit` journal entries.
pub async fn run(st: &AppState, run_id: &str, limit: usize) -> Result<(RunRow, Vec<journal::Entry>)> {
    let id = parse_run_id(run_id)?;
    st.blocking(move |st| {
        let conn = st.pool.get().map_err(|e| Error::Other(format!("recon db pool: {e}")))?;
        let row = journal::get_run(&conn, &id)?;
        let entries = journal::first_entries(&conn, &id, limit)?;
        Ok((row, entries))
    })
    .await
}

/// Run ids are `{time}-{command}-{hex}`: letters, digits and dashes only.
pub fn parse_run_id(raw: &str) -> Result<String> {
    let r = raw.trim();
    if r.is_empty() || r.len() > 120 || !r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(Error::BadTarget(format!("invalid run id {:?}", r.chars().take(80).collect::<String>())));
    }
    Ok(r.to_string())
}

/// A rollback preview's stand-in for PeerTube: counts the videos the journal
/// says the run changed, without contacting PeerTube (whether each still holds
/// what the run wrote is checked when the rollback really runs).
pub struct JournalPreview;

impl VideoRestorer for JournalPreview {
    fn restore(&mut self, entries: &[journal::Entry], _force: bool, dry_run: bool) -> Result<VideoRestore> {
        if !dry_run {
            return Err(Error::Refused("a rollback preview cannot change PeerTube".into()));
        }
        let mut out = VideoRestore::default();
        out.restored = crate::peertube::restore::wants(entries, &mut out).len() as u64;
        Ok(out)
    }
}

/// Rolls a run back, restoring its video entries through the PeerTube
/// transport the run used, or previews it from the journal and recon.db alone
/// (`dry_run`).
pub async fn rollback(st: &AppState, run_id: &str, force: bool, dry_run: bool) -> Result<RollbackSummary> {
    let id = parse_run_id(run_id)?;
    let out = st
        .blocking(move |st| {
            let restorer = {
                let conn = st.pool.get().map_err(|e| Error::Other(format!("recon db pool: {e}")))?;
                journal::get_run(&conn, &id)?;
                if dry_run {
                    // No restorer, no runtime, no PeerTube: a preview reads only the journal and recon.db.
                    return rollback::rollback(&st.env, &id, force, true, Some(Box::new(JournalPreview)));
                }
                crate::peertube::restore::restorer_for_run(&st.cfg, &conn, &id, None)?
            };
            let _gate = st.writer_gate();
            rollback::rollback(&st.env, &id, force, dry_run, restorer)
        })
        .await?;
    if !dry_run {
        st.refresh_snapshot().await.ok();
    }
    Ok(out)
}

pub async fn explain(st: &AppState, raw_hash: &str) -> Result<crate::explain::Explanation> {
    let hash = parse_hash(raw_hash)?;
    st.blocking(move |st| {
        let conn = st.pool.get().map_err(|e| Error::Other(format!("recon db pool: {e}")))?;
        if !queries::document_exists(&conn, &hash)? {
            return Err(Error::NotFound(format!("document {hash}")));
        }
        crate::explain::explain(&st.env, &conn, &hash)
    })
    .await
}

/// Videos people overrode in PeerTube (newest first).
pub async fn overrides(st: &AppState) -> Result<Vec<recondb::Override>> {
    st.blocking(move |st| {
        let conn = st.pool.get().map_err(|e| Error::Other(format!("recon db pool: {e}")))?;
        recondb::list_overrides(&conn)
    })
    .await
}

/// Hands a document back to the machine (`peertube::adopt::hand_back`): its
/// override goes, its domain columns are cleared, and the worker recomputes
/// and pushes it on its next tick.
pub async fn hand_back(st: &AppState, hash: &str, who: &str) -> Result<crate::peertube::adopt::HandBack> {
    let hash = parse_hash(hash)?;
    let who = who.to_string();
    let out = st
        .blocking(move |st| {
            let _gate = st.writer_gate();
            let h = crate::peertube::adopt::hand_back(&st.env, &hash)?;
            tracing::warn!(hash = %hash, by = %who, run = %h.run_id, "handed back to the machine");
            Ok(h)
        })
        .await?;
    st.refresh_snapshot().await.ok();
    st.kick_worker();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_domains_are_validated() {
        // Case is kept (this once lowercased); any safe component is a hash.
        assert_eq!(parse_hash("ABCDEF0123456789abcdef0123456789").unwrap(), "ABCDEF0123456789abcdef0123456789");
        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(parse_hash(sha).unwrap(), sha);
        assert_eq!(parse_hash("abc").unwrap(), "abc");
        assert_eq!(parse_hash(&"Z".repeat(128)).unwrap(), "Z".repeat(128));
        for bad in ["../../etc/passwd", "", ".", "..", "a/b", "a\\b", "a\0b", " abc", "abc ", "caf\u{e9}"] {
            assert!(matches!(parse_hash(bad), Err(Error::BadHash(_))), "{bad:?}");
        }
        assert!(matches!(parse_hash(&"a".repeat(129)), Err(Error::BadHash(_))));
        let d = shared_constants::DOMAINS[5];
        assert_eq!(parse_domain(d.label).unwrap().id, d.id);
        assert_eq!(parse_domain(d.slug).unwrap().id, d.id);
        assert_eq!(parse_domain(&d.id.to_string()).unwrap().id, d.id);
        assert!(matches!(parse_domain("Music"), Err(Error::BadDomain(_))));
        assert!(matches!(parse_domain("99"), Err(Error::BadDomain(_))));
        assert!(parse_run_id("20260101T000000Z-backfill-ab12").is_ok());
        assert!(parse_run_id("x;drop table").is_err());
    }
}
