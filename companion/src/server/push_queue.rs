//! How the service pushes: the [`Pusher`] seam, the real [`PeerTubePusher`] behind it (tests plug in fakes), and the persisted queue of owed and failed pushes with its backoff schedule.

use crate::config::Config;
use crate::context::Env;
use crate::error::Result;
use crate::peertube::adopt::{self, AdoptSummary, Scope, Survey};
use crate::peertube::api::ChangeLog;
use crate::peertube::ledger;
use crate::peertube::push::{self as pt, PushOptions, PushSummary};
use crate::recon::db as recondb;
use crate::server::queries;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What became of one document's push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushResult {
    pub hash: String,
    pub ok: bool,
    /// Why it failed.
    pub message: Option<String>,
    /// Retrying cannot help (no `/w/{uuid}` in the path, video unknown or remote).
    pub permanent: bool,
}

impl PushResult {
    pub fn ok(hash: &str) -> PushResult {
        PushResult { hash: hash.to_string(), ok: true, message: None, permanent: false }
    }
    pub fn failed(hash: &str, message: impl Into<String>, permanent: bool) -> PushResult {
        PushResult { hash: hash.to_string(), ok: false, message: Some(message.into()), permanent }
    }
}

/// PeerTube as the service sees it. Blocking: called from the worker thread and
/// from `spawn_blocking`.
pub trait Pusher: Send + Sync + 'static {
    /// Pushes the stored domain of each document (journaled, with the pushed
    /// timestamp set on success); one result per hash. `Err` means nothing could
    /// be tried at all (PeerTube unreachable, preflight refused, lock held).
    fn push(&self, hashes: &[String]) -> Result<Vec<PushResult>>;
    /// PeerTube reachable and its categories and plugin in parity with ours;
    /// `Ok` carries a one-line description.
    fn check(&self) -> Result<String>;
    /// Finds the categories people set in PeerTube since our writes and takes
    /// them (adopted as `manual_assigned`, or recorded as overrides) in one
    /// journaled run; how many were taken. Fakes that know no PeerTube take none.
    fn adopt(&self) -> Result<u64> {
        Ok(0)
    }
}

/// `companion_state` key of the persisted retry queue.
pub const RETRY_KEY: &str = "push_retry";
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_CAP: Duration = Duration::from_secs(3600);
/// After this many failures (about a day of hourly tries) the service stops
/// retrying; the document stays unpushed for the CLI's --push-pending.
pub const MAX_ATTEMPTS: u32 = 30;

/// One document waiting for a (re)try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryEntry {
    pub attempts: u32,
    /// Unix seconds of the next try.
    pub next_at: i64,
    pub last_error: Option<String>,
}

/// Documents the service owes a push: new assignments (due at once) and failed
/// pushes (due after a backoff that doubles per failure, capped at an hour).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryQueue {
    pub entries: BTreeMap<String, RetryEntry>,
}

/// Delay before try number `attempts + 1`, given `attempts` failures so far.
///
/// Not `support::retry`: that helper retries one operation in a loop within a
/// call, while this is a persisted queue — a failed document waits here for
/// minutes to hours, across service restarts, and each try is a whole push
/// run (which itself retries every request through `support::retry`). The
/// queue therefore keeps its own schedule.
pub fn backoff(attempts: u32) -> Duration {
    let factor = 1u64 << attempts.saturating_sub(1).min(20);
    (BACKOFF_BASE * factor as u32).min(BACKOFF_CAP)
}

impl RetryQueue {
    /// Queues a document for a push at `now` (keeps an existing entry's schedule).
    pub fn add(&mut self, hash: &str, now: i64) {
        self.entries.entry(hash.to_string()).or_insert(RetryEntry { attempts: 0, next_at: now, last_error: None });
    }

    /// Due documents, oldest schedule first.
    pub fn due(&self, now: i64) -> Vec<String> {
        let mut due: Vec<(&String, &RetryEntry)> = self.entries.iter().filter(|(_, e)| e.next_at <= now).collect();
        due.sort_by_key(|(h, e)| (e.next_at, (*h).clone()));
        due.into_iter().map(|(h, _)| h.clone()).collect()
    }

    pub fn succeeded(&mut self, hash: &str) {
        self.entries.remove(hash);
    }

    /// A failed try: schedule the next one, or drop the document when retrying cannot help.
    pub fn failed(&mut self, hash: &str, message: Option<&str>, permanent: bool, now: i64) {
        if permanent {
            self.entries.remove(hash);
            return;
        }
        let e = self.entries.entry(hash.to_string()).or_insert(RetryEntry { attempts: 0, next_at: now, last_error: None });
        e.attempts += 1;
        if e.attempts >= MAX_ATTEMPTS {
            tracing::warn!(hash, attempts = e.attempts, "giving up pushing; left for --push-pending");
            self.entries.remove(hash);
            return;
        }
        e.next_at = now + backoff(e.attempts).as_secs() as i64;
        e.last_error = message.map(str::to_string);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Failed at least once (what the dashboard warns about).
    pub fn failing(&self) -> usize {
        self.entries.values().filter(|e| e.attempts > 0).count()
    }

    pub fn load(conn: &Connection) -> Result<RetryQueue> {
        let Some(text) = recondb::state_get(conn, RETRY_KEY)? else { return Ok(RetryQueue::default()) };
        // A damaged value must not stop the service: start empty, the CLI's
        // --push-pending still finds every unpushed document.
        Ok(serde_json::from_str(&text).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "unreadable push retry queue in companion_state; starting empty");
            RetryQueue::default()
        }))
    }

    pub fn save(&self, conn: &Connection) -> Result<()> {
        let text = serde_json::to_string(self)?;
        recondb::retry_busy(|| recondb::state_set(conn, RETRY_KEY, &text))
    }
}

/// Name of the service's push runs in the journal.
pub const COMMAND: &str = "worker-push";
/// Name of the service's runs that take people's changes.
pub const ADOPT_COMMAND: &str = "worker-adopt";

pub struct PeerTubePusher {
    cfg: Config,
    env: Env,
    /// The server's runtime: pushes are blocking calls from the worker thread
    /// and from `spawn_blocking`, never from async code.
    rt: tokio::runtime::Handle,
    /// What the last adopt step saw, so the next one reads only what changed.
    watch: Mutex<Option<Watch>>,
}

/// The plugin's log as the last adopt step read it, and when every pushed video was last read.
struct Watch {
    log: ChangeLog,
    full_at: Instant,
}

impl PeerTubePusher {
    pub fn new(cfg: Config, env: Env, rt: tokio::runtime::Handle) -> PeerTubePusher {
        PeerTubePusher { cfg, env, rt, watch: Mutex::new(None) }
    }

    /// One adopt step: the survey (scoped to what the log shows changed, while
    /// the last full one is younger than `full_survey_secs`) and the run that takes what it found.
    fn survey_and_take(&self, scope: Scope<'_>) -> Result<(Survey, AdoptSummary)> {
        let survey = self.rt.block_on(adopt::survey_in(&self.cfg, &self.env, scope))?;
        let s = adopt::take(&self.cfg, &self.env, &survey, false, ADOPT_COMMAND)?;
        Ok((survey, s))
    }
}

/// The message of a failed document: the summary's failure line naming it, else the abort, else a generic one.
fn failure_message(s: &PushSummary, hash: &str) -> String {
    s.failures
        .iter()
        .find(|f| f.contains(hash))
        .cloned()
        .or_else(|| s.aborted.clone())
        .unwrap_or_else(|| format!("not pushed (run {}: {} failed)", s.run_id.clone().unwrap_or_default(), s.failed))
}

impl Pusher for PeerTubePusher {
    fn push(&self, hashes: &[String]) -> Result<Vec<PushResult>> {
        let conn = recondb::open_readonly(&self.env.recon_db)?;
        let docs = queries::push_docs(&conn, &self.env.source, hashes)?;
        let pending: std::collections::HashSet<String> = docs.iter().map(|d| d.hash.clone()).collect();
        let priors = ledger::pending_priors(&conn)?;
        let mut planned = PushSummary::default();
        let jobs = pt::plan(docs, &priors, &mut planned);
        let unpushable: HashMap<String, String> = planned.unpushable.iter().cloned().collect();
        let summary = if jobs.is_empty() {
            None
        } else {
            let opts = PushOptions {
                limit: None,
                dry_run: false,
                transport: self.cfg.peertube.transport,
                batch_size: self.cfg.peertube.batch_size.max(1),
                command: COMMAND.into(),
            };
            Some(self.rt.block_on(pt::push(&self.cfg, &self.env, &opts, Some(jobs)))?)
        };
        let mut out = Vec::with_capacity(hashes.len());
        for h in hashes {
            let left_to_people = summary.as_ref().is_some_and(|s| s.left_to_people.iter().any(|(x, _)| x == h));
            if let Some(why) = unpushable.get(h) {
                out.push(PushResult::failed(h, why.clone(), true));
            } else if left_to_people {
                // A person's category: not owed a retry; the next tick's adopt step takes it.
                out.push(PushResult::ok(h));
            } else if !pending.contains(h) || !queries::push_pending(&conn, h)? {
                // Not owed (pushed meanwhile, no domain, not a PeerTube video) or pushed now.
                out.push(PushResult::ok(h));
            } else {
                let msg = summary.as_ref().map(|s| failure_message(s, h)).unwrap_or_else(|| "not pushed".into());
                out.push(PushResult::failed(h, msg, false));
            }
        }
        Ok(out)
    }

    fn adopt(&self) -> Result<u64> {
        let every = Duration::from_secs(self.cfg.peertube.full_survey_secs);
        let prev = self.watch.lock().unwrap_or_else(|p| p.into_inner()).take();
        let scope = match &prev {
            Some(w) if w.full_at.elapsed() < every => Scope::ChangedSince(&w.log),
            _ => Scope::All,
        };
        let started = Instant::now();
        let res = self.survey_and_take(scope);
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        match res {
            Ok((survey, s)) => {
                let full_at = if survey.full { Some(started) } else { prev.map(|w| w.full_at) };
                // A row that changed under the run is looked at again by a full survey next time.
                if s.changed_meanwhile == 0 {
                    *watch = survey.log.zip(full_at).map(|(log, full_at)| Watch { log, full_at });
                }
                Ok((s.adopted.len() + s.overridden.len()) as u64)
            }
            Err(e) => {
                // Nothing taken: the same changes are looked at again next time.
                *watch = prev;
                Err(e)
            }
        }
    }

    fn check(&self) -> Result<String> {
        self.rt.block_on(pt::check_peertube(&self.cfg))?;
        Ok(format!("{}: all 18 categories and the plugin's fingerprint match", self.cfg.peertube.url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(4), Duration::from_secs(80));
        assert_eq!(backoff(30), Duration::from_secs(3600));
    }

    #[test]
    fn queue_schedules_retries_and_drops_permanent_failures() {
        let mut q = RetryQueue::default();
        q.add("a", 100);
        q.add("b", 100);
        assert_eq!(q.due(100), vec!["a".to_string(), "b".to_string()]);
        q.failed("a", Some("503"), false, 100);
        assert_eq!(q.due(100), vec!["b".to_string()]);
        assert_eq!(q.due(110), vec!["b".to_string(), "a".to_string()], "oldest schedule first");
        q.failed("a", Some("503"), false, 110);
        assert!(!q.due(129).contains(&"a".to_string()));
        assert!(q.due(130).contains(&"a".to_string()));
        assert_eq!(q.failing(), 1);
        // Re-adding keeps the backoff schedule.
        q.add("a", 130);
        assert_eq!(q.entries["a"].attempts, 2);
        q.failed("b", Some("no /w/ uuid"), true, 100);
        assert!(!q.entries.contains_key("b"));
        q.succeeded("a");
        assert!(q.is_empty());
    }
}
