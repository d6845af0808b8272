//! What a pass reports: the tally by status and domain, the runbook's percentages, and the pass summary.

use crate::assign::{Outcome, Status};
use crate::recon::concepts::{DocScan, SkipStats};
use crate::recon::source::SourceStats;
use serde::Serialize;
use std::collections::BTreeMap;

/// Tally of outcomes by status and domain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub by_status: BTreeMap<String, u64>,
    pub by_domain: BTreeMap<String, u64>,
}

impl Tally {
    pub fn add(&mut self, o: &Outcome) {
        *self.by_status.entry(o.status.as_str().to_string()).or_default() += 1;
        if let Some(l) = o.domain_label() {
            *self.by_domain.entry(l.to_string()).or_default() += 1;
        }
    }
    pub fn status(&self, s: Status) -> u64 {
        self.by_status.get(s.as_str()).copied().unwrap_or(0)
    }
}

/// What a pass did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassSummary {
    pub command: String,
    pub dry_run: bool,
    pub run_id: Option<String>,
    pub report: Option<String>,
    pub selected: u64,
    pub tally: Tally,
    /// Documents whose concept dir is missing (or whose hash is not one safe path component).
    pub no_concept_dir: u64,
    pub bad_hashes: Vec<String>,
    pub skipped: SkipStats,
    /// Rows actually changed (journaled).
    pub written: u64,
    /// Rows whose stored result already matched.
    pub unchanged: u64,
    /// Rows someone else changed between our read and our write: left alone.
    pub changed_concurrently: u64,
    pub elapsed_ms: u64,
    /// Runbook benchmarks: assigned/tied as % of concept-bearing, needs_reprocess as % of all.
    pub percent: Percentages,
    pub concept_bytes: u64,
    pub concept_files: u64,
    /// `files` or `qdrant`.
    pub source: String,
    /// The source's own report (Qdrant: strategy, requests, retries, failures).
    pub source_stats: SourceStats,
    /// Documents whose counts could not be read (a Qdrant request failed after
    /// retries): `needs_reprocess`, or left as they were when a channel-mate's failed.
    pub errors: u64,
    /// Why the run stopped early, when it did (nothing of this run was written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentages {
    pub assigned_of_concept_bearing: f64,
    pub tied_of_concept_bearing: f64,
    pub needs_reprocess_of_all: f64,
    pub no_concepts_of_all: f64,
}

pub fn percentages(t: &Tally, selected: u64) -> Percentages {
    let assigned = t.status(Status::Assigned) + t.status(Status::TiedPass2);
    let tied = t.status(Status::TiedPass1) + t.status(Status::TiedManual);
    let bearing = assigned + tied;
    let pct = |n: u64, d: u64| if d == 0 { 0.0 } else { (n as f64) * 100.0 / (d as f64) };
    Percentages {
        assigned_of_concept_bearing: pct(assigned, bearing),
        tied_of_concept_bearing: pct(tied, bearing),
        needs_reprocess_of_all: pct(t.status(Status::NeedsReprocess), selected),
        no_concepts_of_all: pct(t.status(Status::NoConcepts), selected),
    }
}

impl PassSummary {
    /// Adds what one document's scan found to the file statistics.
    pub fn note_scan(&mut self, hash: &str, scan: &DocScan) {
        if scan.bad_hash {
            self.bad_hashes.push(hash.to_string());
        }
        if scan.failed.is_some() {
            self.errors += 1;
        } else if !scan.dir_found {
            self.no_concept_dir += 1;
        }
        self.skipped.add(&scan.skipped());
        self.concept_files += scan.files();
        self.concept_bytes += scan.bytes;
    }
}
