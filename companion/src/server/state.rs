//! What every handler and the worker share: config, read-only connection pool,
//! snapshot, metrics, pusher, retry queue, login limiter, session store, templates.

use crate::config::Config;
use crate::context::Env;
use crate::error::{Error, Result};
use crate::server::auth::LoginLimiter;
use crate::server::metrics::Metrics;
use crate::server::push_queue::{Pusher, RetryQueue};
use crate::server::snapshot::SnapshotCache;
use crate::server::views;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::OpenFlags;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// How often the snapshot is rebuilt when nothing invalidates it.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(5);
/// How often the worker re-checks PeerTube for /readyz.
pub const PEERTUBE_CHECK_EVERY: Duration = Duration::from_secs(60);

/// The worker's last known state, for /readyz, /metrics and the dashboard.
#[derive(Debug, Clone, Default)]
pub struct WorkerStatus {
    pub started: bool,
    pub last_tick: Option<Instant>,
    pub last_tick_at: Option<String>,
    /// `ok`, `skipped` (a CLI run held the writer lock) or `error`.
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    pub last_tiebreak: Option<Instant>,
    pub ticks: u64,
    pub assigned_total: u64,
    pub pushed_total: u64,
    pub push_failed_total: u64,
}

/// The last PeerTube check.
#[derive(Debug, Clone, Default)]
pub struct PeerTubeCheck {
    pub at: Option<Instant>,
    pub checked_at: Option<String>,
    pub ok: bool,
    pub detail: String,
}

pub struct Inner {
    pub cfg: Config,
    pub env: Env,
    pub pool: Pool,
    pub snapshot: SnapshotCache,
    pub metrics: Metrics,
    pub pusher: Arc<dyn Pusher>,
    pub retry: Mutex<RetryQueue>,
    /// Serializes this process's state-changing steps (worker, manual assign,
    /// rollback): each takes the writer lock, which refuses a second holder even
    /// in the same process.
    pub writer: Mutex<()>,
    pub worker: Mutex<WorkerStatus>,
    pub peertube: Mutex<PeerTubeCheck>,
    pub limiter: LoginLimiter,
    /// `server.trusted_proxies`, parsed (the config check refused bad entries).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub templates: minijinja::Environment<'static>,
    /// Sessions, kept in recon.db's `companion_sessions` so a restart logs nobody out.
    pub sessions: crate::server::session_store::SqliteSessionStore,
    pub pages: crate::server::render_cache::RenderCache,
    pub poll_interval: Duration,
    pub tiebreaker_interval: Duration,
    /// The kill switch as last read (the worker re-reads the db before pushing).
    pub paused: AtomicBool,
    /// Wakes the worker (after resume-push, or a manual assignment's failed push).
    pub kick: Mutex<Option<std::sync::mpsc::Sender<crate::server::worker::Msg>>>,
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// A pool of read-only connections: handlers never write through it.
pub fn read_pool(env: &Env, size: u32) -> Result<Pool> {
    if !env.recon_db.is_file() {
        return Err(Error::NotFound(format!("recon db {}", env.recon_db.display())));
    }
    let mgr = SqliteConnectionManager::file(&env.recon_db)
        .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI)
        .with_init(|c| c.busy_timeout(Duration::from_secs(5)));
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .build(mgr)
        .map_err(|e| Error::Other(format!("recon db pool {}: {e}", env.recon_db.display())))
}

impl AppState {
    pub fn new(cfg: Config, env: Env, pusher: Arc<dyn Pusher>) -> Result<AppState> {
        let pool = read_pool(&env, 4)?;
        let (retry, paused) = match pool.get() {
            Ok(conn) if crate::recon::db::migration_state(&conn).map(|s| s.companion_tables).unwrap_or(false) => {
                (RetryQueue::load(&conn)?, crate::server::pause::is_paused(&conn)?)
            }
            _ => (RetryQueue::default(), false),
        };
        let poll_interval = Duration::from_secs(cfg.server.poll_interval_secs.max(1));
        let tiebreaker_interval = Duration::from_secs(cfg.server.tiebreaker_interval_secs.max(1));
        let limiter = LoginLimiter::with_concurrency(
            cfg.server.login_max_failures as usize,
            Duration::from_secs(cfg.server.login_window_secs.max(1)),
            cfg.server.login_max_concurrent as usize,
        );
        let trusted_proxies = cfg.server.trusted_proxies.iter().filter_map(|p| crate::config::parse_net(p)).collect();
        Ok(AppState(Arc::new(Inner {
            templates: views::templates()?,
            sessions: crate::server::session_store::SqliteSessionStore::new(&env.recon_db),
            pages: Default::default(),
            cfg,
            env,
            pool,
            snapshot: SnapshotCache::new(SNAPSHOT_TTL),
            metrics: Metrics::new(),
            pusher,
            retry: Mutex::new(retry),
            writer: Mutex::new(()),
            worker: Mutex::new(WorkerStatus::default()),
            peertube: Mutex::new(PeerTubeCheck::default()),
            limiter,
            trusted_proxies,
            poll_interval,
            tiebreaker_interval,
            paused: AtomicBool::new(paused),
            kick: Mutex::new(None),
        })))
    }

    pub fn worker_status(&self) -> WorkerStatus {
        self.worker.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn peertube_check(&self) -> PeerTubeCheck {
        self.peertube.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The worker is fresh when it finished a tick within three poll intervals
    /// (plus slack for a long tick).
    pub fn worker_fresh(&self) -> bool {
        let w = self.worker_status();
        w.last_tick.is_some_and(|t| t.elapsed() <= self.poll_interval * 3 + Duration::from_secs(30))
    }

    /// Locks the in-process writer gate; a poisoned gate is still a gate.
    pub fn writer_gate(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs blocking work (SQLite, files, pushes) off the async threads.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(AppState) -> Result<T> + Send + 'static,
    {
        let st = self.clone();
        tokio::task::spawn_blocking(move || f(st)).await.map_err(|e| Error::Other(format!("worker thread failed: {e}")))?
    }

    /// The snapshot, starting a background rebuild when it is old or invalidated.
    pub fn snapshot(&self) -> Arc<crate::server::snapshot::Snapshot> {
        if self.snapshot.claim_rebuild() {
            let st = self.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = st.snapshot.rebuild(&st.env, &st.cfg.server.public_url) {
                    tracing::warn!(error = %e, "snapshot rebuild failed");
                }
                st.update_gauges();
            });
        }
        self.snapshot.get()
    }

    /// Rebuilds now and waits (after a write the operator expects to see).
    pub async fn refresh_snapshot(&self) -> Result<Arc<crate::server::snapshot::Snapshot>> {
        let s = self.blocking(|st| st.snapshot.rebuild(&st.env, &st.cfg.server.public_url)).await?;
        self.update_gauges();
        Ok(s)
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    pub fn note_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
        self.metrics.push_paused.set(i64::from(paused));
    }

    /// Wakes the worker for an early tick (no-op when it is not running).
    pub fn kick_worker(&self) {
        if let Some(tx) = self.kick.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(crate::server::worker::Msg::Kick);
        }
    }

    /// Copies the snapshot's numbers into the gauges.
    pub fn update_gauges(&self) {
        let s = self.snapshot.get();
        for st in crate::assign::Status::ALL {
            self.metrics.set_documents(st.as_str(), s.count(st));
        }
        self.metrics.set_documents("unassigned", s.new_documents);
        self.metrics.set_backlog("unassigned", s.new_documents);
        self.metrics.set_backlog("unpushed", s.status.unpushed);
        let q = self.retry.lock().unwrap_or_else(|p| p.into_inner());
        self.metrics.set_backlog("push_queue", q.len() as u64);
        self.metrics.set_backlog("push_failing", q.failing() as u64);
    }
}
