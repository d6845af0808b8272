//! A push run: select pending documents, check PeerTube, learn current categories in bulk, write only the videos that change through the api or db transport with the journal around every write, and stop as systemic after N failures in a row.

mod api_transport;
mod db_transport;
mod guard;
mod select;

pub use select::{plan, unique_batches};

use crate::config::{Config, Transport};
use crate::context::Env;
use crate::error::{Error, Result};
use crate::journal::run::Run;
use crate::peertube::api::ApiClient;
use crate::peertube::ledger::{self, DocMark, Intent, Ledger, Prior, PushDoc};
use crate::peertube::preflight;
use crate::peertube::video_id::VideoUuid;
use crate::recon::db as recondb;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How many failure lines a summary keeps.
const MAX_LISTED: usize = 50;

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub limit: Option<u64>,
    pub dry_run: bool,
    pub transport: Transport,
    pub batch_size: usize,
    /// Name of the run (`push-pending`, `reconcile-repair`).
    pub command: String,
}

/// What a push run did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushSummary {
    pub command: String,
    pub transport: String,
    pub dry_run: bool,
    pub run_id: Option<String>,
    pub report: Option<String>,
    pub selected: u64,
    /// Pushable documents by domain label.
    pub by_domain: BTreeMap<String, u64>,
    /// Written to PeerTube and recorded.
    pub pushed: u64,
    /// PeerTube already held the category (nothing written), recorded as pushed.
    pub already_set: u64,
    /// Of those, writes of an interrupted run found in PeerTube and confirmed.
    pub recovered: u64,
    pub failed: u64,
    /// Videos PeerTube does not know (404 / no row).
    pub not_found: u64,
    /// Remote videos (db transport): not this instance's to change.
    pub remote: u64,
    /// Compare-and-set lost: the video changed in PeerTube between read and write.
    pub changed_in_peertube: u64,
    /// Written, but the document's domain changed meanwhile: left unpushed.
    pub document_changed: u64,
    /// Videos holding a person's choice (the plugin saw them set it, or it is
    /// not what we last wrote): not written, left for the adopt step
    /// (`reconcile --adopt`, the service's next tick). Hash → what PeerTube holds and who set it.
    pub left_to_people: Vec<(String, String)>,
    /// Documents that cannot be pushed (no `/w/{uuid}`, unknown domain): hash → reason.
    pub unpushable: Vec<(String, String)>,
    pub failures: Vec<String>,
    pub aborted: Option<String>,
    pub elapsed_ms: u64,
    pub http_requests: u64,
    pub http_retries: u64,
    /// Of those retries, PeerTube's "could not serialize access" 500s (the write had not happened).
    pub serialization_retries: u64,
    /// Where the api transport learned current categories (postgresql, video list, per-video GET).
    pub snapshot: String,
    /// Videos settled (pushed or already right) per second of the run.
    pub videos_per_sec: f64,
    /// HTTP requests per selected video (RECON's writer: 1, the old GET+PUT client: 2).
    pub requests_per_video: f64,
    /// Highest number of requests in flight the adaptive gate allowed, and where it ended.
    pub concurrency_reached: usize,
    pub concurrency_final: usize,
    /// Where the time went (db transport): lookup, journal, write, confirm.
    pub phase_ms: BTreeMap<String, u64>,
}

impl PushSummary {
    fn note_failure(&mut self, msg: String) {
        self.failed += 1;
        if self.failures.len() < MAX_LISTED {
            self.failures.push(msg);
        }
    }
    fn phase(&mut self, name: &str, since: Instant) {
        *self.phase_ms.entry(name.to_string()).or_default() += since.elapsed().as_millis() as u64;
    }
    fn mark(&mut self, m: DocMark) {
        if m == DocMark::ChangedMeanwhile {
            self.document_changed += 1;
        }
    }
}

/// One video to write.
#[derive(Debug, Clone)]
pub struct Job {
    pub doc: PushDoc,
    pub video: VideoUuid,
    pub category: i64,
    pub prior: Option<Prior>,
}

impl Job {
    /// The journal's intent to write this job's category over `old`.
    fn intent(&self, old: Option<i64>) -> Intent {
        Intent {
            hash: self.doc.hash.clone(),
            video: self.video.clone(),
            domain: self.doc.domain.clone(),
            category: self.category,
            old,
            prior: self.prior.clone(),
        }
    }
}

/// A video the bulk read shows cannot be written (`remote`, or gone): counted, listed and journaled as a failure.
fn refuse(s: &mut PushSummary, l: &mut Ledger, j: &Job, remote: bool) -> Result<()> {
    let msg = if remote {
        s.remote += 1;
        "remote video: only its own instance may change it"
    } else {
        s.not_found += 1;
        "no such video in PeerTube's database"
    };
    s.note_failure(format!("{} (doc {}): {msg}", j.video, j.doc.hash));
    l.failure(j.video.as_str(), &j.doc.hash, Some(j.category), msg)
}

/// Journals the videos already at their category (no request is made for them) and counts them.
fn record_already_set(s: &mut PushSummary, l: &mut Ledger, already: &[Intent]) -> Result<()> {
    let refs: Vec<&Intent> = already.iter().collect();
    for m in l.already_set(&refs)? {
        s.mark(m);
    }
    s.already_set += already.len() as u64;
    s.recovered += already.iter().filter(|i| i.prior.is_some()).count() as u64;
    Ok(())
}

/// One transaction journals a round's writes as pending before any is made; their entry ids.
fn journal_pending(l: &mut Ledger, writes: &[Intent]) -> Result<Vec<i64>> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    l.pending(&writes.iter().collect::<Vec<_>>())
}

fn lock(l: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    // A panic while holding the lock leaves a usable connection: every ledger
    // change is a complete transaction or none.
    l.lock().unwrap_or_else(|p| p.into_inner())
}

async fn with_ledger<T: Send + 'static>(ledger: &Arc<Mutex<Ledger>>, f: impl FnOnce(&mut Ledger) -> Result<T> + Send + 'static) -> Result<T> {
    let l = ledger.clone();
    tokio::task::spawn_blocking(move || f(&mut lock(&l))).await.map_err(|e| Error::Other(format!("journal task: {e}")))?
}

/// Counts a dry run: what would be pushed, by domain. Opens recon.db read-only.
pub fn dry_run(env: &Env, opts: &PushOptions) -> Result<PushSummary> {
    let conn = recondb::open_readonly(&env.recon_db)?;
    let mut s = PushSummary { command: opts.command.clone(), transport: opts.transport.to_string(), dry_run: true, ..Default::default() };
    if !recondb::feature_columns_present(&conn)? {
        return Ok(s);
    }
    let docs = ledger::select_pending(&conn, &env.source, opts.limit)?;
    s.selected = docs.len() as u64;
    let _ = plan(docs, &HashMap::new(), &mut s);
    Ok(s)
}

/// Preflight through the API; a refusal names every problem.
pub async fn check_peertube(cfg: &Config) -> Result<ApiClient> {
    let client = ApiClient::from_config(cfg)?;
    let p = preflight::run(&client).await.map_err(|e| Error::PeerTube(format!("cannot check PeerTube at {} before pushing: {e}", cfg.peertube.url)))?;
    if !p.ok() {
        return Err(Error::Refused(format!("PeerTube is not ready for our categories: {}", p.problems.join("; "))));
    }
    Ok(client)
}

/// A full push run. `jobs_override` replaces the push rule's selection (reconcile repairs).
pub async fn push(cfg: &Config, env: &Env, opts: &PushOptions, jobs_override: Option<Vec<Job>>) -> Result<PushSummary> {
    if opts.dry_run {
        return dry_run(env, opts);
    }
    let started = Instant::now();
    let mut s = PushSummary { command: opts.command.clone(), transport: opts.transport.to_string(), ..Default::default() };
    let client = Arc::new(check_peertube(cfg).await?);
    if opts.transport == Transport::Api {
        // Show a broken login before the run starts, not as N failures.
        client.ensure_login().await.map_err(Error::from)?;
    }
    let mut conn = recondb::open(&env.recon_db)?;
    let run =
        Run::begin(env, &mut conn, &opts.command, json!({ "limit": opts.limit, "transport": opts.transport.to_string(), "batch_size": opts.batch_size }))?;
    s.run_id = Some(run.id.clone());
    let jobs = match jobs_override {
        Some(j) => j,
        None => {
            let docs = ledger::select_pending(&conn, &env.source, opts.limit)?;
            s.selected = docs.len() as u64;
            let priors = ledger::pending_priors(&conn)?;
            plan(docs, &priors, &mut s)
        }
    };
    if s.selected == 0 {
        s.selected = jobs.len() as u64;
        for j in &jobs {
            *s.by_domain.entry(j.doc.domain.clone()).or_default() += 1;
        }
    }
    let transport: &'static str = match opts.transport {
        Transport::Api => "api",
        Transport::Db => "db",
    };
    let videos: Vec<&VideoUuid> = jobs.iter().map(|j| &j.video).collect();
    let last = ledger::last_writes_of(&conn, &videos)?;
    let ledger = Arc::new(Mutex::new(Ledger::new(conn, run.id.clone(), transport, opts.command == "push-pending")));
    // Read before PeerTube's categories: a change landing between the two is seen at the next read.
    let guard = guard::Guard::open(cfg, &client, last).await;
    let res = match opts.transport {
        Transport::Api => api_transport::push_api(cfg, client.clone(), ledger.clone(), guard, jobs, &mut s, env.progress).await,
        Transport::Db => db_transport::push_db(cfg, opts.batch_size, &client, ledger.clone(), guard, jobs, &mut s).await,
    };
    s.elapsed_ms = started.elapsed().as_millis() as u64;
    s.http_requests = client.stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    s.http_retries = client.stats.retries.load(std::sync::atomic::Ordering::Relaxed);
    s.serialization_retries = client.stats.serialization_failures.load(std::sync::atomic::Ordering::Relaxed);
    s.videos_per_sec = (s.pushed + s.already_set) as f64 / (s.elapsed_ms.max(1) as f64 / 1000.0);
    s.requests_per_video = if s.selected == 0 { 0.0 } else { s.http_requests as f64 / s.selected as f64 };
    if opts.transport == Transport::Api {
        s.concurrency_reached = client.gate.reached();
        s.concurrency_final = client.gate.current();
    }
    let outcome = match (&res, &s.aborted) {
        (Err(_), _) => "failed",
        (Ok(()), Some(_)) => "aborted",
        (Ok(()), None) => "done",
    };
    let conn = match Arc::try_unwrap(ledger) {
        Ok(m) => m.into_inner().unwrap_or_else(|p| p.into_inner()).conn,
        Err(_) => return Err(Error::Other("journal still in use at the end of the run".into())),
    };
    let mut counts = serde_json::to_value(&s)?;
    if let Err(e) = &res {
        counts["error"] = json!(e.to_string());
    }
    let path = run.finish(env, &conn, outcome, &counts)?;
    s.report = Some(path.display().to_string());
    res?;
    Ok(s)
}
