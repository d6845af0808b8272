//! A push run: select pending documents, check PeerTube, learn current categories in bulk, write only the videos that change through the api or db transport with the journal around every write, and stop as systemic after N failures in a row.

use crate::config::{Config, Transport};
use crate::context::Env;
use crate::engine::Run;
use crate::error::{Error, Result};
use crate::peertube::api::{ApiClient, ApiError};
use crate::peertube::db::PgVideos;
use crate::peertube::ledger::{self, DocMark, Intent, Ledger, Prior, PushDoc, Unpushable};
use crate::peertube::preflight;
use crate::peertube::video_id::VideoUuid;
use crate::recon::db as recondb;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
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

/// Splits jobs into batches in which every video appears once; repeats go to later batches.
pub fn unique_batches(jobs: Vec<Job>, size: usize) -> Vec<Vec<Job>> {
    let mut out = Vec::new();
    let mut rest = jobs;
    while !rest.is_empty() {
        let mut seen = HashSet::new();
        let (mut this, mut next) = (Vec::new(), Vec::new());
        for j in rest {
            if seen.insert(j.video.clone()) {
                this.push(j);
            } else {
                next.push(j);
            }
        }
        let mut it = this.into_iter().peekable();
        while it.peek().is_some() {
            out.push(it.by_ref().take(size.max(1)).collect());
        }
        rest = next;
    }
    out
}

/// Turns selected documents into jobs; the rest are reported as unpushable.
pub fn plan(docs: Vec<PushDoc>, priors: &HashMap<String, Prior>, summary: &mut PushSummary) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(docs.len());
    for doc in docs {
        match ledger::target_of(&doc) {
            Ok((video, category)) => {
                *summary.by_domain.entry(doc.domain.clone()).or_default() += 1;
                let prior = priors.get(video.as_str()).filter(|p| p.new == Some(category) && p.hash.as_deref().is_none_or(|h| h == doc.hash)).cloned();
                jobs.push(Job { doc, video, category, prior });
            }
            Err(why) => {
                if matches!(why, Unpushable::Path(_)) {
                    eprintln!("not pushable: {} ({}): {why}", doc.hash, doc.path);
                }
                summary.unpushable.push((doc.hash.clone(), format!("{why} — path {:?}", doc.path)));
            }
        }
    }
    jobs
}

/// Tracks failures in a row and names the likely cause.
#[derive(Default)]
struct Streak {
    n: u32,
    last: Option<ApiError>,
}

impl Streak {
    fn cause(&self) -> String {
        match &self.last {
            Some(ApiError::BadCategory(m)) => format!(
                "PeerTube refuses our category ids (HTTP 400): peertube-plugin-recon-domains is probably missing or disabled — run `recon-companion verify-peertube`. Last: {m}"
            ),
            Some(ApiError::Auth(m)) => format!(
                "authentication is broken (401/403): check peertube.username, the password (env var / peertube.password_file) and that the user is an admin. Last: {m}"
            ),
            Some(ApiError::Unavailable(m)) => format!("PeerTube is down or overloaded (timeouts, 5xx, 429 after retries). Last: {m}"),
            Some(e) => format!("unexpected errors. Last: {e}"),
            None => "unknown".into(),
        }
    }
}

enum VideoOutcome {
    Pushed(DocMark),
    AlreadySet {
        mark: DocMark,
        recovered: bool,
    },
    /// Definite failure (nothing changed) or ambiguous (entry left pending).
    Failed(ApiError, String),
    NotFound(String),
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

/// The write of one video whose current category is known and journaled as pending.
async fn put_one(client: Arc<ApiClient>, ledger: Arc<Mutex<Ledger>>, id: i64, intent: Intent) -> Result<VideoOutcome> {
    match client.set_category(&intent.video, Some(intent.category)).await {
        Ok(()) => {
            let marks = with_ledger(&ledger, move |l| l.applied(&[(id, &intent)])).await?;
            Ok(VideoOutcome::Pushed(marks[0]))
        }
        Err(e) => {
            let msg = format!("{} (doc {}): {e}", intent.video, intent.hash);
            // A timeout may have landed: the entry stays pending, and the next
            // run or a rollback reads PeerTube to learn what happened.
            if !matches!(e, ApiError::Unavailable(_)) {
                let note = e.to_string();
                with_ledger(&ledger, move |l| l.failed(&[(id, note)])).await?;
            }
            Ok(match e {
                ApiError::NotFound(_) => VideoOutcome::NotFound(msg),
                e => VideoOutcome::Failed(e, msg),
            })
        }
    }
}

/// A video the bulk read did not show: read it, then write it if needed (GET + PUT).
async fn api_one(client: Arc<ApiClient>, ledger: Arc<Mutex<Ledger>>, job: Job) -> Result<VideoOutcome> {
    let hash = job.doc.hash.clone();
    let cur = match client.video_category(&job.video).await {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("{} (doc {hash}): {e}", job.video);
            let (key, note, cat) = (job.video.to_string(), e.to_string(), job.category);
            with_ledger(&ledger, move |l| l.failure(&key, &hash, Some(cat), &note)).await?;
            return Ok(match e {
                ApiError::NotFound(_) => VideoOutcome::NotFound(msg),
                e => VideoOutcome::Failed(e, msg),
            });
        }
    };
    let intent =
        Intent { hash: hash.clone(), video: job.video.clone(), domain: job.doc.domain.clone(), category: job.category, old: cur, prior: job.prior.clone() };
    if cur == Some(job.category) {
        let recovered = intent.prior.is_some();
        let marks = with_ledger(&ledger, move |l| l.already_set(&[&intent])).await?;
        return Ok(VideoOutcome::AlreadySet { mark: marks[0], recovered });
    }
    let i2 = intent.clone();
    let id = with_ledger(&ledger, move |l| l.pending(&[&i2])).await?[0];
    put_one(client, ledger, id, intent).await
}

/// Videos per round of the api transport: their current categories are read
/// (PostgreSQL) or checked for freshness (the list) right before they are
/// written, so an edit made in PeerTube during a long run is seen.
const API_CHUNK: usize = 200;

/// What the bulk read says about one video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Category(Option<i64>),
    /// No such row in PeerTube's database.
    Missing,
    Remote,
}

/// Where the api transport learns current categories before writing.
enum Snapshot {
    /// PeerTube's PostgreSQL (`db_url`): one query per chunk.
    Pg(PgVideos),
    /// PeerTube's paged list of local videos, re-read when older than `max_age`.
    List { map: HashMap<VideoUuid, Option<i64>>, taken: Instant, max_age: std::time::Duration },
    /// Too few videos to be worth a bulk read: GET each before its PUT.
    PerVideo,
}

impl Snapshot {
    fn name(&self) -> &'static str {
        match self {
            Snapshot::Pg(_) => "postgresql",
            Snapshot::List { .. } => "video list",
            Snapshot::PerVideo => "per-video GET",
        }
    }

    async fn open(cfg: &Config, client: &Arc<ApiClient>, videos: usize) -> Result<Snapshot> {
        if cfg.peertube.db_url.is_some() {
            match PgVideos::connect(cfg).await {
                Ok(pg) => return Ok(Snapshot::Pg(pg)),
                // The API can still tell: a read-only helper must not stop the push.
                Err(e) => tracing::warn!(error = %e, "cannot read current categories from PeerTube's PostgreSQL; using its video list"),
            }
        }
        Snapshot::list(cfg, client, videos).await
    }

    async fn list(cfg: &Config, client: &Arc<ApiClient>, videos: usize) -> Result<Snapshot> {
        let max_age = std::time::Duration::from_secs(cfg.peertube.snapshot_max_age_secs.max(1));
        Ok(match client.local_videos(videos).await {
            Ok(Some(map)) => Snapshot::List { map, taken: Instant::now(), max_age },
            Ok(None) => Snapshot::PerVideo,
            // Only users with the right to see every video may list them all:
            // anyone else still pushes, reading each video before writing it.
            Err(ApiError::Auth(m)) => {
                tracing::warn!(error = %m, "PeerTube refused the full video list (not an admin?); reading each video instead");
                Snapshot::PerVideo
            }
            Err(e) => return Err(Error::PeerTube(format!("reading PeerTube's list of local videos: {e}"))),
        })
    }

    /// Current state of a chunk's videos; absent = unknown (read per video).
    async fn lookup(&mut self, cfg: &Config, client: &Arc<ApiClient>, chunk: &[Job], remaining: usize) -> Result<HashMap<VideoUuid, Known>> {
        if let Snapshot::List { taken, max_age, .. } = self {
            if taken.elapsed() > *max_age {
                *self = Snapshot::list(cfg, client, remaining).await?;
            }
        }
        Ok(match self {
            Snapshot::Pg(pg) => {
                let ids: Vec<&VideoUuid> = chunk.iter().map(|j| &j.video).collect();
                let rows = pg.current(&ids).await?;
                chunk
                    .iter()
                    .map(|j| {
                        let k = match rows.get(&j.video) {
                            None => Known::Missing,
                            Some(r) if r.remote => Known::Remote,
                            Some(r) => Known::Category(r.category.map(i64::from)),
                        };
                        (j.video.clone(), k)
                    })
                    .collect()
            }
            Snapshot::List { map, .. } => chunk.iter().filter_map(|j| Some((j.video.clone(), Known::Category(*map.get(&j.video)?)))).collect(),
            Snapshot::PerVideo => HashMap::new(),
        })
    }
}

/// Live counters of an api push, for the progress line.
struct Progress {
    pb: indicatif::ProgressBar,
    started: Instant,
    last_log: Instant,
    total: u64,
    done: u64,
}

impl Progress {
    /// Long pushes log a line this often when stderr is not a terminal.
    const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

    fn tick(&mut self, n: u64, client: &ApiClient) {
        self.done += n;
        self.pb.inc(n);
        let retries = client.stats.retries.load(std::sync::atomic::Ordering::Relaxed);
        let in_flight = client.gate.current();
        self.pb.set_message(format!("push ×{in_flight} r{retries}"));
        if self.pb.is_hidden() && self.last_log.elapsed() >= Self::LOG_EVERY {
            self.last_log = Instant::now();
            let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            let eta = (self.total - self.done.min(self.total)) as f64 / rate.max(1e-9);
            tracing::info!(done = self.done, total = self.total, videos_per_sec = format!("{rate:.1}"), eta_secs = eta.round(), retries, in_flight, "pushing");
        }
    }
}

fn tally(out: VideoOutcome, s: &mut PushSummary, streak: &mut Streak, max_fail: u32) {
    match out {
        VideoOutcome::Pushed(m) => {
            s.pushed += 1;
            s.mark(m);
            streak.n = 0;
        }
        VideoOutcome::AlreadySet { mark, recovered } => {
            s.already_set += 1;
            s.recovered += u64::from(recovered);
            s.mark(mark);
            streak.n = 0;
        }
        VideoOutcome::NotFound(msg) => {
            // A deleted video says nothing about the system: no streak.
            s.not_found += 1;
            s.note_failure(msg);
        }
        VideoOutcome::Failed(e, msg) => {
            s.note_failure(msg);
            streak.n += 1;
            streak.last = Some(e);
            if streak.n >= max_fail && s.aborted.is_none() {
                s.aborted = Some(format!("{} consecutive failures: {}", streak.n, streak.cause()));
            }
        }
    }
}

/// A spawned write or read+write, with the pending entry it owns (if any).
type Task = (Option<i64>, Result<VideoOutcome>);

async fn push_api(cfg: &Config, client: Arc<ApiClient>, ledger: Arc<Mutex<Ledger>>, jobs: Vec<Job>, s: &mut PushSummary, show: bool) -> Result<()> {
    let max_fail = cfg.peertube.max_consecutive_failures;
    // Tasks in flight at most; the client's adaptive gate decides how many requests really go out.
    let max_tasks = cfg.peertube.concurrency.max(1);
    let mut streak = Streak::default();
    let total = jobs.len() as u64;
    let pb = crate::support::progress::progress_bar(show && std::io::IsTerminal::is_terminal(&std::io::stderr()), total, "push");
    let mut progress = Progress { pb, started: Instant::now(), last_log: Instant::now(), total, done: 0 };
    let t = Instant::now();
    let mut snapshot = Snapshot::open(cfg, &client, jobs.len()).await?;
    s.snapshot = snapshot.name().to_string();
    s.phase("snapshot", t);
    let mut remaining = jobs.len();
    for chunk in unique_batches(jobs, API_CHUNK) {
        if s.aborted.is_some() {
            break;
        }
        let t = Instant::now();
        let known = snapshot.lookup(cfg, &client, &chunk, remaining).await?;
        remaining = remaining.saturating_sub(chunk.len());
        let (mut already, mut writes, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
        // The journal lock is released before any await below.
        let ids = {
            let mut l = lock(&ledger);
            for j in chunk {
                let intent = |old| Intent {
                    hash: j.doc.hash.clone(),
                    video: j.video.clone(),
                    domain: j.doc.domain.clone(),
                    category: j.category,
                    old,
                    prior: j.prior.clone(),
                };
                match known.get(&j.video) {
                    // Already right: no request reaches PeerTube for it.
                    Some(Known::Category(c)) if *c == Some(j.category) => already.push(intent(*c)),
                    Some(Known::Category(c)) => writes.push(intent(*c)),
                    Some(Known::Missing) => {
                        s.not_found += 1;
                        let msg = "no such video in PeerTube's database";
                        s.note_failure(format!("{} (doc {}): {msg}", j.video, j.doc.hash));
                        l.failure(j.video.as_str(), &j.doc.hash, Some(j.category), msg)?;
                        progress.tick(1, &client);
                    }
                    Some(Known::Remote) => {
                        s.remote += 1;
                        let msg = "remote video: only its own instance may change it";
                        s.note_failure(format!("{} (doc {}): {msg}", j.video, j.doc.hash));
                        l.failure(j.video.as_str(), &j.doc.hash, Some(j.category), msg)?;
                        progress.tick(1, &client);
                    }
                    None => unknown.push(j),
                }
            }
            if !already.is_empty() {
                let refs: Vec<&Intent> = already.iter().collect();
                for m in l.already_set(&refs)? {
                    s.mark(m);
                }
                s.already_set += already.len() as u64;
                s.recovered += already.iter().filter(|i| i.prior.is_some()).count() as u64;
                streak.n = 0;
                progress.tick(already.len() as u64, &client);
            }
            // One transaction journals the chunk's writes before any is made.
            if writes.is_empty() {
                Vec::new()
            } else {
                l.pending(&writes.iter().collect::<Vec<_>>())?
            }
        };
        s.phase("journal_pending", t);
        let t = Instant::now();
        let mut set: tokio::task::JoinSet<Task> = tokio::task::JoinSet::new();
        let mut not_started: Vec<(i64, String)> = Vec::new();
        let work = ids.into_iter().zip(writes).map(|(id, i)| (Some(id), Some(i), None)).chain(unknown.into_iter().map(|j| (None, None, Some(j))));
        for (id, intent, job) in work {
            // Every finished task is counted before the next starts, so an
            // abort leaves at most `max_tasks` writes in flight behind it.
            while set.len() >= max_tasks {
                if let Some(res) = set.join_next().await {
                    let (_, r) = res.map_err(|e| Error::Other(format!("push task: {e}")))?;
                    tally(r?, s, &mut streak, max_fail);
                    progress.tick(1, &client);
                }
            }
            while let Some(res) = set.try_join_next() {
                let (_, r) = res.map_err(|e| Error::Other(format!("push task: {e}")))?;
                tally(r?, s, &mut streak, max_fail);
                progress.tick(1, &client);
            }
            if s.aborted.is_some() {
                if let Some(id) = id {
                    not_started.push((id, format!("not attempted: {}", s.aborted.clone().unwrap_or_default())));
                }
                continue;
            }
            let (c, l) = (client.clone(), ledger.clone());
            set.spawn(async move {
                let r = match (intent, job) {
                    (Some(i), _) => put_one(c, l, id.unwrap_or_default(), i).await,
                    (None, Some(j)) => api_one(c, l, j).await,
                    (None, None) => Err(Error::Other("push task without work".into())),
                };
                (id, r)
            });
        }
        while let Some(res) = set.join_next().await {
            let (_, r) = res.map_err(|e| Error::Other(format!("push task: {e}")))?;
            tally(r?, s, &mut streak, max_fail);
            progress.tick(1, &client);
        }
        if !not_started.is_empty() {
            // Journaled but never sent: closed, so no pending entry suggests a write.
            with_ledger(&ledger, move |l| l.failed(&not_started)).await?;
        }
        s.phase("write", t);
    }
    progress.pb.finish_and_clear();
    Ok(())
}

async fn push_db(cfg: &Config, batch_size: usize, ledger: Arc<Mutex<Ledger>>, jobs: Vec<Job>, s: &mut PushSummary) -> Result<()> {
    let mut pg = PgVideos::connect(cfg).await?;
    let pb = crate::support::progress::progress_bar(std::io::IsTerminal::is_terminal(&std::io::stderr()), jobs.len() as u64, "push");
    for batch in unique_batches(jobs, batch_size) {
        let uuids: Vec<&VideoUuid> = batch.iter().map(|j| &j.video).collect();
        let t = Instant::now();
        let current = pg.current(&uuids).await?;
        s.phase("pg_read", t);
        let t = Instant::now();
        let mut already = Vec::new();
        let mut writes = Vec::new();
        // The journal lock is released before any await below.
        let ids = {
            let mut l = lock(&ledger);
            for j in &batch {
                let intent = |old| Intent {
                    hash: j.doc.hash.clone(),
                    video: j.video.clone(),
                    domain: j.doc.domain.clone(),
                    category: j.category,
                    old,
                    prior: j.prior.clone(),
                };
                match current.get(&j.video) {
                    None => {
                        s.not_found += 1;
                        let msg = "no such video in PeerTube's database";
                        s.note_failure(format!("{} (doc {}): {msg}", j.video, j.doc.hash));
                        l.failure(j.video.as_str(), &j.doc.hash, Some(j.category), msg)?;
                    }
                    Some(v) if v.remote => {
                        s.remote += 1;
                        let msg = "remote video: only its own instance may change it";
                        s.note_failure(format!("{} (doc {}): {msg}", j.video, j.doc.hash));
                        l.failure(j.video.as_str(), &j.doc.hash, Some(j.category), msg)?;
                    }
                    Some(v) if v.category.map(i64::from) == Some(j.category) => already.push(intent(Some(j.category))),
                    Some(v) => writes.push(intent(v.category.map(i64::from))),
                }
            }
            if !already.is_empty() {
                let refs: Vec<&Intent> = already.iter().collect();
                for m in l.already_set(&refs)? {
                    s.mark(m);
                }
                s.already_set += already.len() as u64;
                s.recovered += already.iter().filter(|i| i.prior.is_some()).count() as u64;
            }
            let refs: Vec<&Intent> = writes.iter().collect();
            if refs.is_empty() {
                Vec::new()
            } else {
                l.pending(&refs)?
            }
        };
        if !writes.is_empty() {
            s.phase("journal_pending", t);
            let t = Instant::now();
            let rows: Vec<(VideoUuid, Option<i32>, Option<i32>)> =
                writes.iter().map(|i| (i.video.clone(), i.old.and_then(|c| i32::try_from(c).ok()), i32::try_from(i.category).ok())).collect();
            // On an error here the entries stay pending: the transaction either
            // committed or not, and the next run reads PeerTube to tell.
            let written = pg.compare_and_set(&rows).await?;
            s.phase("pg_write", t);
            let t = Instant::now();
            let mut l = lock(&ledger);
            let done: Vec<(i64, &Intent)> = ids.iter().copied().zip(writes.iter()).filter(|(_, i)| written.contains(&i.video)).collect();
            for m in l.applied(&done)? {
                s.mark(m);
            }
            s.pushed += done.len() as u64;
            let lost: Vec<(i64, String)> = ids
                .iter()
                .copied()
                .zip(writes.iter())
                .filter(|(_, i)| !written.contains(&i.video))
                .map(|(id, i)| {
                    s.changed_in_peertube += 1;
                    s.note_failure(format!("{} (doc {}): changed in PeerTube between read and write; left alone", i.video, i.hash));
                    (id, "compare-and-set lost: the video's category changed in PeerTube meanwhile; not overwritten".to_string())
                })
                .collect();
            l.failed(&lost)?;
            s.phase("journal_confirm", t);
        }
        pb.inc(batch.len() as u64);
    }
    pb.finish_and_clear();
    Ok(())
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
    let ledger = Arc::new(Mutex::new(Ledger { conn, run_id: run.id.clone(), transport, require_unpushed: opts.command == "push-pending" }));
    let res = match opts.transport {
        Transport::Api => push_api(cfg, client.clone(), ledger.clone(), jobs, &mut s, env.progress).await,
        Transport::Db => push_db(cfg, opts.batch_size, ledger.clone(), jobs, &mut s).await,
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
