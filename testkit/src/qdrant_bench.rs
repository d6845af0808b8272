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
