//! How many machine-decided assignments RECON's data may have changed since: noticed each worker tick at a cost bounded by what changed plus one small slice, never by re-reading the library.
//!
//! Two signals, both described in docs/runbook.md ("Reassessing after RECON changes"):
//!
//! - RECON's own times, one SQL query per tick: `documents.enriched_at` (its
//!   enricher rewrote the concept files) or `embedded_at` (its embedder
//!   upserted the points into Qdrant) later than `recon_domain_assigned_at`.
//!   Reliable for everything RECON's pipeline does; blind to writes outside it
//!   (`scripts/migrate_domains.py`'s in-place `set_payload`, a hand edit).
//! - A rolling re-check of [`SLICE`] decided rows per tick, in hash order,
//!   round and round: with files, the mtimes of each row's concept dir and
//!   window files against its assignment time (stat calls only: no concept
//!   file is opened; an in-place rewrite moves the file's mtime, an added or
//!   removed window the dir's); with Qdrant, which has no per-point time, a
//!   fresh count of the slice (one collection request and one filtered scroll)
//!   compared with the stored result by `engine::reassess::still_holds`. A
//!   change outside RECON's pipeline is noticed within one round
//!   (library / SLICE ticks), not at once.
//!
//! Rows flagged by the re-check stay counted until their assignment changes
//! (a reassessment writes or confirms them) or the next round finds they hold.

use crate::assign;
use crate::config::SourceKind;
use crate::engine::reassess::still_holds;
use crate::error::Result;
use crate::recon::db as recondb;
use crate::recon::freshness;
use crate::server::state::AppState;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Decided rows re-checked per tick.
pub const SLICE: u64 = 64;
/// Hashes listed in the view (the count is exact; the list is a sample).
const LISTED: usize = 20;

/// What one check cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CheckCost {
    /// Decided rows re-checked in this tick's slice.
    pub rows_rechecked: u64,
    /// Directory entries stat'ed (files source).
    pub dir_entries_stat: u64,
    /// Concept files opened: the check never opens one.
    pub concept_files_read: u64,
    /// HTTP requests to Qdrant (Qdrant source).
    pub qdrant_requests: u64,
    pub elapsed_ms: u64,
}

/// The stale count as the API, the dashboard and `/metrics` show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StaleView {
    /// Distinct stale assignments (both signals).
    pub stale: u64,
    /// RECON worked on the document after its assignment (enriched_at / embedded_at).
    pub by_recon_times: u64,
    /// Found by the rolling re-check (newer concept files; Qdrant counts that no longer give the stored result).
    pub by_recheck: u64,
    /// Some of them.
    pub hashes: Vec<String>,
    /// Rows re-checked since the service started.
    pub rechecked_total: u64,
    pub last_check_at: Option<String>,
    pub last_cost: CheckCost,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The worker's memory between checks.
#[derive(Debug, Default)]
pub struct StaleState {
    cursor: String,
    /// Flagged by the re-check: hash → its `recon_domain_assigned_at` then.
    flagged: BTreeMap<String, Option<String>>,
    pub view: StaleView,
}

/// One check (the worker runs it after each tick); updates the state and the gauge.
/// A failure is kept in the view (`last_error`) and logged, never fatal.
pub fn check(st: &AppState) -> StaleView {
    let started = Instant::now();
    let res = check_inner(st, started);
    let mut s = st.stale.lock().unwrap_or_else(|p| p.into_inner());
    match res {
        Ok(()) => s.view.last_error = None,
        Err(e) => {
            tracing::warn!(error = %e, "stale check failed");
            s.view.last_error = Some(e.to_string());
        }
    }
    st.metrics.stale_assignments.set(s.view.stale as i64);
    s.view.clone()
}

fn check_inner(st: &AppState, started: Instant) -> Result<()> {
    let env = &st.env;
    let conn = recondb::open_readonly(&env.recon_db)?;
    if !recondb::feature_columns_present(&conn)? {
        return Ok(());
    }
    let by_times = recondb::stale_by_recon_times(&conn, &env.source)?;
    let (cursor, mut flagged) = {
        let s = st.stale.lock().unwrap_or_else(|p| p.into_inner());
        (s.cursor.clone(), s.flagged.clone())
    };
    // A flagged row whose assignment moved was reassessed (or reset): no longer stale.
    let mut dropped = Vec::new();
    for (h, at) in &flagged {
        if recondb::assigned_at(&conn, h)? != *at {
            dropped.push(h.clone());
        }
    }
    for h in dropped {
        flagged.remove(&h);
    }
    let mut slice = recondb::decided_after(&conn, &env.source, &cursor, SLICE)?;
    if slice.is_empty() && !cursor.is_empty() {
        slice = recondb::decided_after(&conn, &env.source, "", SLICE)?;
    }
    let mut cost = CheckCost { rows_rechecked: slice.len() as u64, ..CheckCost::default() };
    match env.concepts.kind() {
        SourceKind::Files => {
            for r in &slice {
                let (changed, t) = freshness::files_changed_since(&env.concepts_dir, &r.hash, r.cols.recon_domain_assigned_at.as_deref());
                cost.dir_entries_stat += t.entries;
                mark(&mut flagged, &r.hash, r.cols.recon_domain_assigned_at.as_ref(), changed);
            }
        }
        SourceKind::Qdrant if !slice.is_empty() => {
            let hashes: Vec<String> = slice.iter().map(|r| r.hash.clone()).collect();
            let counts = env.concepts.clone().without_memo().counts(&env.concepts_dir, &hashes, false, "stale check")?;
            cost.qdrant_requests = counts.stats.requests;
            let no_counts = env.no_counts_status();
            for (r, scan) in slice.iter().zip(&counts.scans) {
                let Some(old) = r.cols.recon_domain_status.as_deref().and_then(assign::Status::parse) else { continue };
                if scan.failed.is_some() {
                    continue;
                }
                let first = assign::pass1_as(scan.dir_found.then_some(&scan.totals), no_counts);
                mark(&mut flagged, &r.hash, r.cols.recon_domain_assigned_at.as_ref(), !still_holds(r.cols.recon_domain.as_deref(), old, &first));
            }
        }
        SourceKind::Qdrant => {}
    }
    cost.elapsed_ms = started.elapsed().as_millis() as u64;
    let all: BTreeSet<&String> = by_times.iter().chain(flagged.keys()).collect();
    let mut s = st.stale.lock().unwrap_or_else(|p| p.into_inner());
    s.cursor = slice.last().map(|r| r.hash.clone()).unwrap_or_default();
    s.view = StaleView {
        stale: all.len() as u64,
        by_recon_times: by_times.len() as u64,
        by_recheck: flagged.len() as u64,
        hashes: all.iter().take(LISTED).map(|h| (*h).clone()).collect(),
        rechecked_total: s.view.rechecked_total + cost.rows_rechecked,
        last_check_at: Some(recondb::now()),
        last_cost: cost,
        last_error: None,
    };
    s.flagged = flagged;
    Ok(())
}

fn mark(flagged: &mut BTreeMap<String, Option<String>>, hash: &str, assigned_at: Option<&String>, stale: bool) {
    if stale {
        flagged.insert(hash.to_string(), assigned_at.cloned());
    } else {
        flagged.remove(hash);
    }
}

impl AppState {
    /// The last stale check's view.
    pub fn stale_view(&self) -> StaleView {
        self.stale.lock().unwrap_or_else(|p| p.into_inner()).view.clone()
    }
}
