//! The api transport: a bulk read of current categories (PostgreSQL, the video list, or per video), then one PUT per video that changes, with adaptive concurrency.

use super::guard::Guard;
use super::{journal_pending, lock, record_already_set, refuse, unique_batches, with_ledger, Job, PushSummary};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::peertube::api::{ApiClient, ApiError};
use crate::peertube::db::PgVideos;
use crate::peertube::ledger::{DocMark, Intent, Ledger};
use crate::peertube::video_id::VideoUuid;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    /// PeerTube holds a person's choice: not written (hash, line).
    LeftToPeople(String, String),
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
async fn api_one(client: Arc<ApiClient>, ledger: Arc<Mutex<Ledger>>, guard: Guard, job: Job) -> Result<VideoOutcome> {
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
    let wrote = lock(&ledger).wrote(&job.video);
    if let Some(to) = guard.persons_choice(&job, cur, wrote) {
        let (hash, line) = guard.left(&job, to);
        return Ok(VideoOutcome::LeftToPeople(hash, line));
    }
    let intent = job.intent(cur);
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
    /// PeerTube's paged list of local videos, checked when older than `max_age`:
    /// through the plugin's change log when it keeps one (one request; the
    /// videos people changed since are read again before their write), else
    /// by reading the whole list again (at 22K videos, ~220 pages each time).
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

    /// Forgets what the list said of videos this run is about to write: a later
    /// job for the same video (a repeat) reads PeerTube before its write.
    fn forget(&mut self, chunk: &[Job]) {
        if let Snapshot::List { map, .. } = self {
            for j in chunk {
                map.remove(&j.video);
            }
        }
    }

    /// Current state of a chunk's videos; absent = unknown (read per video).
    async fn lookup(&mut self, cfg: &Config, client: &Arc<ApiClient>, guard: &mut Guard, chunk: &[Job], remaining: usize) -> Result<HashMap<VideoUuid, Known>> {
        match self {
            Snapshot::List { map, taken, max_age } if taken.elapsed() > *max_age => match guard.refresh(cfg, client).await {
                Some(changed) => {
                    // Unknown again: read before written, like any video the list did not show.
                    for v in &changed {
                        map.remove(v);
                    }
                    *taken = Instant::now();
                }
                None => *self = Snapshot::list(cfg, client, remaining).await?,
            },
            Snapshot::List { .. } => {}
            _ => guard.refresh_if_old(cfg, client).await,
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
        VideoOutcome::LeftToPeople(hash, line) => s.left_to_people.push((hash, line)),
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

/// Counts a finished task and moves the progress line on.
fn settle(
    res: std::result::Result<Task, tokio::task::JoinError>,
    s: &mut PushSummary,
    streak: &mut Streak,
    max_fail: u32,
    progress: &mut Progress,
    client: &ApiClient,
) -> Result<()> {
    let (_, r) = res.map_err(|e| Error::Other(format!("push task: {e}")))?;
    tally(r?, s, streak, max_fail);
    progress.tick(1, client);
    Ok(())
}

pub(super) async fn push_api(
    cfg: &Config,
    client: Arc<ApiClient>,
    ledger: Arc<Mutex<Ledger>>,
    mut guard: Guard,
    jobs: Vec<Job>,
    s: &mut PushSummary,
    show: bool,
) -> Result<()> {
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
        let known = snapshot.lookup(cfg, &client, &mut guard, &chunk, remaining).await?;
        snapshot.forget(&chunk);
        remaining = remaining.saturating_sub(chunk.len());
        let (mut already, mut writes, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
        // The journal lock is released before any await below.
        let ids = {
            let mut l = lock(&ledger);
            for j in chunk {
                match known.get(&j.video) {
                    // Already right: no request reaches PeerTube for it.
                    Some(Known::Category(c)) if *c == Some(j.category) => already.push(j.intent(*c)),
                    Some(Known::Category(c)) => match guard.persons_choice(&j, *c, l.wrote(&j.video)) {
                        Some(to) => {
                            s.left_to_people.push(guard.left(&j, to));
                            progress.tick(1, &client);
                        }
                        None => writes.push(j.intent(*c)),
                    },
                    Some(k @ (Known::Missing | Known::Remote)) => {
                        refuse(s, &mut l, &j, *k == Known::Remote)?;
                        progress.tick(1, &client);
                    }
                    None => unknown.push(j),
                }
            }
            if !already.is_empty() {
                record_already_set(s, &mut l, &already)?;
                streak.n = 0;
                progress.tick(already.len() as u64, &client);
            }
            journal_pending(&mut l, &writes)?
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
                    settle(res, s, &mut streak, max_fail, &mut progress, &client)?;
                }
            }
            while let Some(res) = set.try_join_next() {
                settle(res, s, &mut streak, max_fail, &mut progress, &client)?;
            }
            if s.aborted.is_some() {
                if let Some(id) = id {
                    not_started.push((id, format!("not attempted: {}", s.aborted.clone().unwrap_or_default())));
                }
                continue;
            }
            let (c, l, g) = (client.clone(), ledger.clone(), guard.clone());
            set.spawn(async move {
                let r = match (intent, job) {
                    (Some(i), _) => put_one(c, l, id.unwrap_or_default(), i).await,
                    (None, Some(j)) => api_one(c, l, g, j).await,
                    (None, None) => Err(Error::Other("push task without work".into())),
                };
                (id, r)
            });
        }
        while let Some(res) = set.join_next().await {
            settle(res, s, &mut streak, max_fail, &mut progress, &client)?;
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
