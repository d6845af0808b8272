//! Issue #16's targets side by side: `cargo bench -p integration-tests --bench limits` prints one markdown table (ours, RECON on the same machine, target, met).
//!
//! Sections (`-- --only files,push,qdrant`, default all):
//! - files: `recon-companion` processes (release build, made by the bench) on
//!   the generated library of `recon-companion bench` (22,000 videos, or
//!   `--library N`; `--library 220000` is 5.8 GB, only on request): backfill
//!   end to end and tiebreaker against `tests/python/recon_reference.py`,
//!   RECON's writers (`tests/python/recon_writers.py`) during ours, and the
//!   backfill's peak RSS;
//! - push: `testkit::push_bench::api_vs_bare(3000)` against the PeerTube stand-in;
//! - qdrant: a real Qdrant (`../shared/qdrant/qdrant`) with the issue's
//!   1.48M-point collection: dry run (min of 3) without and with the doc_hash
//!   index, tiebreaker after a backfill, against `recon_qdrant_reference.py`.
//!
//! `--quick`: 2,000 videos for files and Qdrant (~150K points), 300 for push.
//! Progress goes to stderr, the table to stdout.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed step must stop it loudly

use std::path::PathBuf;

#[path = "limits/files.rs"]
mod files;
#[path = "limits/qdrant.rs"]
mod qdrant;

/// One line of the table.
pub struct Row {
    pub item: String,
    pub measure: String,
    pub ours: String,
    pub recon: String,
    pub target: String,
    pub met: String,
}

impl Row {
    pub fn new(item: &str, measure: impl Into<String>, ours: impl Into<String>, recon: impl Into<String>, target: &str, met: Option<bool>) -> Row {
        let met = match met {
            Some(true) => "yes".to_string(),
            Some(false) => "**no**".to_string(),
            None => "—".to_string(),
        };
        Row { item: item.into(), measure: measure.into(), ours: ours.into(), recon: recon.into(), target: target.into(), met }
    }
}

/// The bench's options.
pub struct Opts {
    pub quick: bool,
    pub only: Vec<String>,
    /// Videos of the files section.
    pub library: usize,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let quick = args.iter().any(|a| a == "--quick");
    let only = value("--only").map_or_else(|| vec!["files".into(), "push".into(), "qdrant".into()], |s| s.split(',').map(|p| p.trim().to_string()).collect());
    for s in &only {
        assert!(["files", "push", "qdrant"].contains(&s.as_str()), "--only takes files,push,qdrant (got {s:?})");
    }
    let library = value("--library").map(|n| n.replace(['_', ','], "").parse().expect("--library N")).unwrap_or(if quick { 2_000 } else { 22_000 });
    Opts { quick, only, library }
}

/// The machine's cores (what a floor divides CPU seconds by).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The workspace root (this package is `tests/`).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() {
    let o = opts();
    let mut rows: Vec<Row> = Vec::new();
    let t = std::time::Instant::now();
    if o.only.iter().any(|s| s == "files") {
        eprintln!("== files ({} videos) ==", o.library);
        rows.extend(files::section(o.library));
    }
    if o.only.iter().any(|s| s == "push") {
        let n = if o.quick { 300 } else { 3_000 };
        eprintln!("== push ({n} videos, stand-in PeerTube) ==");
        rows.extend(push(n));
    }
    if o.only.iter().any(|s| s == "qdrant") {
        let n = if o.quick { 2_000 } else { 22_000 };
        eprintln!("== real Qdrant ({n} videos) ==");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rows.extend(rt.block_on(qdrant::section(n)));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("| item | measure | ours | RECON (same machine) | target | met |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!("| {} | {} | {} | {} | {} | {} |", r.item, r.measure, r.ours, r.recon, r.target, r.met);
    }
    println!(
        "\n{} cores; load average at the end: {}; whole bench {:.0} s{}",
        cores(),
        load.trim(),
        t.elapsed().as_secs_f64(),
        if o.quick { " (--quick sizes)" } else { "" }
    );
}

/// Item 4: our api push against the bare PUT loop on the stand-in.
fn push(videos: usize) -> Vec<Row> {
    let r = testkit::push_bench::api_vs_bare(videos).expect("api vs bare");
    eprintln!("{r:?}");
    vec![
        Row::new(
            "4 push",
            format!("api push rate, {videos} videos, of a bare PUT loop's (stand-in PeerTube 8.0.1 / 2 cores)"),
            format!("{:.1} videos/s = {:.0} %", r.ours_per_sec, 100.0 * r.ratio),
            format!("— (bare PUT loop {:.1} videos/s)", r.bare_put_per_sec),
            "≥ 90 %",
            Some(r.ratio >= r.target),
        ),
        Row::new(
            "4 push",
            "lost / doubled writes; serialization 500s met / retried",
            format!("{} / {}; {} / {}", r.lost, r.doubled, r.retries_500, r.retried_500),
            "—",
            "0 / 0; every 500 retried",
            Some(r.lost == 0 && r.doubled == 0 && r.retries_500 == r.retried_500),
        ),
    ]
}
