//! What the benches on a real Qdrant share: the issue's collection (spec and padding), timed engine passes as fresh Envs, min/median, the server's CPU seconds.

use std::path::Path;
use std::time::Instant;

use companion::config::{Config, SourceKind};
use companion::demo::DemoSpec;
use companion::engine::PassSummary;

use crate::qdrant_real_world::{wait_green, Load, RealQdrantWorld};

/// The issue's RECON library of `docs` videos: ~34 concepts each, no malformed files, short texts in the files (the points carry the long ones).
pub fn issue_spec(docs: usize) -> DemoSpec {
    DemoSpec { docs, content_bytes: 16, malformed_rate: 0.0, concepts_per_window: (6, 12), ..DemoSpec::production() }
}

/// The issue's collection around the demo's points: as many points of other sources, ~500-byte payload texts (22,000 videos: 1.48M points).
pub fn issue_load() -> Load {
    Load { other_share: 0.5, text_bytes: 500, ..Load::default() }
}

/// (min, median) of a non-empty list.
pub fn min_median(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match (s.first(), s.get(s.len() / 2)) {
        (Some(a), Some(b)) => (*a, *b),
        _ => (f64::NAN, f64::NAN),
    }
}

/// User + system CPU seconds of a process (Linux `/proc/{pid}/stat`).
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks / 100.0)
}

/// Which engine pass [`RealQdrantWorld::timed_pass`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    DryRun,
    Backfill,
    Tiebreaker,
}

impl RealQdrantWorld {
    /// Adds the doc_hash keyword index unless the collection has it, and waits until it is green.
    pub async fn ensure_doc_hash_index(&self) {
        if !self.doc_hash_indexed().await {
            self.server.index_doc_hash(&self.collection).await;
            wait_green(&self.server, &self.collection).await;
        }
    }

    /// One pass on `db` with the Qdrant source and a fresh Env (a fresh
    /// process in the runbook: one Env's source keeps a memo of what it read);
    /// returns its summary and wall seconds.
    pub async fn timed_pass(&self, db: &Path, pass: Pass, tweak: impl FnOnce(&mut Config)) -> (PassSummary, f64) {
        let env = self.env(db, SourceKind::Qdrant, tweak);
        tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let s = match pass {
                Pass::DryRun => companion::engine::backfill(&env, None, true),
                Pass::Backfill => companion::engine::backfill(&env, None, false),
                Pass::Tiebreaker => companion::engine::tiebreaker(&env, None, false),
            };
            let s = s.unwrap_or_else(|e| panic!("{pass:?}: {e}"));
            (s, t.elapsed().as_secs_f64())
        })
        .await
        .unwrap_or_else(|e| panic!("{pass:?} task: {e}"))
    }

    /// `reps` backfill dry runs on `db`, each with a fresh Env: every run's seconds and the last summary.
    pub async fn dry_runs(&self, db: &Path, reps: usize, tweak: impl Fn(&mut Config)) -> (Vec<f64>, PassSummary) {
        let (mut last, t) = self.timed_pass(db, Pass::DryRun, &tweak).await;
        let mut secs = vec![t];
        for _ in 1..reps {
            let (s, t) = self.timed_pass(db, Pass::DryRun, &tweak).await;
            secs.push(t);
            last = s;
        }
        (secs, last)
    }
}

/// A pusher that pushes nothing: for a worker tick measured or tested without PeerTube.
pub struct NoPush;

impl companion::server::push_queue::Pusher for NoPush {
    fn push(&self, hashes: &[String]) -> companion::error::Result<Vec<companion::server::push_queue::PushResult>> {
        Ok(hashes.iter().map(|h| companion::server::push_queue::PushResult::failed(h, "no PeerTube here", false)).collect())
    }
    fn check(&self) -> companion::error::Result<String> {
        Ok("no PeerTube here".into())
    }
}

/// What one service tick cost the server.
#[derive(Debug, Clone, Copy, Default)]
pub struct TickCost {
    /// Documents the tick assigned.
    pub assigned: u64,
    pub wall_seconds: f64,
    /// REST requests the server answered during the tick.
    pub requests: u64,
    /// The server's own CPU seconds during the tick.
    pub server_cpu: f64,
}

impl RealQdrantWorld {
    /// REST answers the server has counted (`rest_responses_total` in `/metrics`).
    pub async fn rest_responses(&self) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.server.url())).await.and_then(|r| r.error_for_status()).expect("GET /metrics");
        let text = text.text().await.expect("metrics text");
        text.lines()
            .filter(|l| l.starts_with("rest_responses_total{") && !l.contains("/metrics"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .map(|v| v as u64)
            .sum()
    }

    /// One worker tick of the service on `db` (a backfilled copy after
    /// `fresh` documents were made new again, as RECON finishing them would):
    /// its wall time, requests and the server's CPU.
    pub async fn tick_cost(&self, db: &Path, fresh: &[String], tweak: impl FnOnce(&mut Config)) -> TickCost {
        {
            let c = rusqlite::Connection::open(db).expect("open the bench's db");
            for h in fresh {
                c.execute("UPDATE documents SET recon_domain = NULL, recon_domain_status = NULL WHERE hash = ?1", [h]).expect("make a document new");
            }
        }
        let mut cfg = self.config(db, SourceKind::Qdrant);
        tweak(&mut cfg);
        let mut env = companion::context::Env::from_config(&cfg);
        env.progress = false;
        let st = companion::server::state::AppState::new(cfg, env, std::sync::Arc::new(NoPush)).expect("service state");
        let (req0, cpu0) = (self.rest_responses().await, self.server.pid().and_then(process_cpu_seconds).unwrap_or(0.0));
        let t = Instant::now();
        let tick = tokio::task::spawn_blocking(move || companion::server::worker::tick(&st).expect("tick")).await.expect("tick task");
        let wall_seconds = t.elapsed().as_secs_f64();
        let (req1, cpu1) = (self.rest_responses().await, self.server.pid().and_then(process_cpu_seconds).unwrap_or(0.0));
        TickCost { assigned: tick.assigned, wall_seconds, requests: req1.saturating_sub(req0), server_cpu: cpu1 - cpu0 }
    }
}
