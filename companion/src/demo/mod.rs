//! Generates a realistic, deterministic RECON data dir (recon.db + concept files) for demos and benchmarks.
//!
//! The data is engineered: every complete PeerTube document is planned to be a
//! clear winner, a tie or a `needs_reprocess` case, so a dry run over it must
//! reproduce the counts in [`DemoSummary`] exactly. Malformed files are laid out
//! so that they never change a planned outcome, whichever way a reader treats
//! the ambiguous ones (a UTF-8 BOM).

mod db;
mod plan;
mod render;
mod vocab;

pub mod bench;
pub mod qdrant;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use render::{FileStats, MALFORMED};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSpec {
    /// PeerTube videos (documents with a `stream.echo6.co` catalogue row).
    pub docs: usize,
    pub seed: u64,
    /// Inclusive range of window files per concept-bearing document.
    pub windows_per_doc: (usize, usize),
    /// Inclusive range of concepts per window.
    pub concepts_per_window: (usize, usize),
    /// Approximate bytes of `content` per concept.
    pub content_bytes: usize,
    /// Size of the 'Transcript' catch-all channel (capped at `docs`).
    pub transcript_docs: usize,
    /// Share of concept-bearing complete videos engineered to tie in pass 1.
    pub tie_rate: f64,
    /// Share of complete videos engineered to need reprocessing.
    pub reprocess_rate: f64,
    /// Share of window files that are malformed (or merely unusual: deep nesting, BOM).
    pub malformed_rate: f64,
    /// Non-PeerTube documents, as a share of `docs` (backfill must ignore them).
    pub non_stream_rate: f64,
    /// Share of videos not yet `complete` (queued, enriching, failed).
    pub incomplete_rate: f64,
    /// Videos whose catalogue category (channel) is NULL.
    pub null_category_docs: usize,
    /// Size of one channel of exactly this many videos (the mega-channel
    /// boundary: 500 is not mega); 0 for none.
    pub boundary_channel_docs: usize,
    /// `catalogue.source` of videos.
    pub source: String,
}

impl DemoSpec {
    /// A small, quick data set with every feature of the production one.
    pub fn demo(docs: usize) -> DemoSpec {
        DemoSpec {
            docs,
            seed: 42,
            windows_per_doc: (2, 6),
            concepts_per_window: (2, 5),
            content_bytes: 240,
            // 42 % as in production, so the channel is over 500 from 1,200 docs on.
            transcript_docs: ((docs as f64 * 0.42).ceil() as usize).max(1),
            tie_rate: 0.05,
            reprocess_rate: 0.20,
            malformed_rate: 0.01,
            non_stream_rate: 0.03,
            incomplete_rate: 0.05,
            null_category_docs: if docs >= 1000 { 3 } else { 2 },
            boundary_channel_docs: if docs >= 5000 { 500 } else { 0 },
            source: "stream.echo6.co".into(),
        }
    }

    /// The production-sized set of the benchmark: 22,000 videos, ~6 windows of
    /// ~6 concepts each, ~600 MB of JSON, a 'Transcript' channel of 9,200.
    pub fn production() -> DemoSpec {
        DemoSpec { windows_per_doc: (4, 8), concepts_per_window: (4, 8), content_bytes: 560, transcript_docs: 9_200, ..DemoSpec::demo(22_000) }
    }
}

/// What [`generate`] wrote. The `expected_*`/`engineered_*` counts are what a
/// pass-1 dry run over the complete PeerTube documents must report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DemoSummary {
    /// All documents rows.
    pub docs: u64,
    /// Documents with a PeerTube catalogue row.
    pub stream_docs: u64,
    /// PeerTube documents with status `complete` (what backfill selects).
    pub complete: u64,
    /// Complete PeerTube documents whose files hold at least one valid domain.
    pub concept_bearing: u64,
    /// Catalogue rows of videos with no documents row yet.
    pub catalogue_only: u64,
    pub non_stream_docs: u64,
    /// Distinct non-NULL channels of PeerTube videos.
    pub channels: u64,
    /// PeerTube catalogue rows in the 'Transcript' channel.
    pub transcript_size: u64,
    pub null_category_docs: u64,
    /// Complete videos planned as clear winners (pass 1 → `assigned`).
    pub expected_assigned: u64,
    /// Complete videos planned to tie (pass 1 → `tied_pass_1`).
    pub engineered_ties: u64,
    /// Complete videos planned as `needs_reprocess`.
    pub engineered_reprocess: u64,
    pub windows_written: u64,
    /// Every file written under `concepts/` (windows, meta.json, strays).
    pub files_written: u64,
    pub bytes_written: u64,
    pub malformed_files: u64,
    pub malformed_by_kind: BTreeMap<String, u64>,
    pub elapsed_ms: u64,
}

/// Writes `dir/recon.db` and `dir/concepts/`; refuses if either exists.
pub fn generate(dir: &Path, spec: &DemoSpec) -> Result<DemoSummary> {
    let started = Instant::now();
    check_spec(spec)?;
    let db_path = dir.join("recon.db");
    let concepts = dir.join("concepts");
    for p in [&db_path, &concepts] {
        if p.exists() {
            return Err(Error::Refused(format!("{} already exists; the demo writes only into a fresh dir", p.display())));
        }
    }
    fs::create_dir_all(&concepts).map_err(|e| Error::io(&concepts, e))?;

    let plan = plan::plan(spec);
    let mut summary = db::write_db(&db_path, spec, &plan)?;

    let stats =
        plan.docs.par_iter().enumerate().map(|(i, doc)| render::write_doc(&concepts, spec, i, doc)).try_reduce(FileStats::default, |a, b| Ok(a.merge(b)))?;

    summary.windows_written = stats.windows;
    summary.files_written = stats.files;
    summary.bytes_written = stats.bytes;
    summary.malformed_files = stats.malformed.iter().sum();
    summary.malformed_by_kind = MALFORMED.iter().zip(stats.malformed.iter()).map(|(k, n)| (k.name().to_string(), *n)).collect();
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

fn check_spec(spec: &DemoSpec) -> Result<()> {
    let bad = |m: &str| Err(Error::Config(format!("demo spec: {m}")));
    if spec.docs == 0 {
        return bad("docs must be at least 1");
    }
    if spec.windows_per_doc.0 == 0 || spec.windows_per_doc.0 > spec.windows_per_doc.1 {
        return bad("windows_per_doc must be a range (min >= 1, min <= max)");
    }
    if spec.concepts_per_window.0 == 0 || spec.concepts_per_window.0 > spec.concepts_per_window.1 {
        return bad("concepts_per_window must be a range (min >= 1, min <= max)");
    }
    for (name, r) in [
        ("tie_rate", spec.tie_rate),
        ("reprocess_rate", spec.reprocess_rate),
        ("malformed_rate", spec.malformed_rate),
        ("non_stream_rate", spec.non_stream_rate),
        ("incomplete_rate", spec.incomplete_rate),
    ] {
        if !(0.0..=1.0).contains(&r) {
            return bad(&format!("{name} must be within 0..=1"));
        }
    }
    Ok(())
}
