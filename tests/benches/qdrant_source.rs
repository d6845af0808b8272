//! The Qdrant source at production size: 22,000 videos, ~750,000 concept
//! points plus other sources' points.
//!
//! `cargo bench -p integration-tests --bench qdrant_source` runs against the
//! in-process stand-in and prints one table: per strategy, the runbook's
//! commands as separate processes (backfill dry run, backfill, tiebreaker)
//! with saved counts on and off, and RECON's request count for the same
//! documents (one scroll per document, one per tie); then a profile of one
//! whole-collection scroll.
//!
//! `... --bench qdrant_source -- --real` runs against a real Qdrant server
//! (see `testkit::qdrant_server` for where its binary is found) loaded with
//! the collection: the same 22,000 videos, as many points of other
//! sources (1.48M points in all), ~500-byte payload texts. Each
//! configuration (doc_hash index or not, parallel requests) runs each command
//! `--reps N` times (default 3): min and median seconds, requests, Qdrant's
//! own time (the sum of its answers' `time` fields) and the server process's
//! CPU seconds. `--small` loads the demo's points only (~750K, no texts).
//! `--grpc` adds the same reads through Qdrant's official Rust client
//! (`qdrant-client`, gRPC) for comparison.
//! Saved counts are off throughout: every command reads Qdrant.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed step must stop it loudly

use std::path::Path;
use std::time::Instant;

use companion::assign::Status;
use companion::config::qdrant::Strategy;
use companion::config::SourceKind;
use companion::demo::DemoSpec;
use companion::engine::PassSummary;
use companion::recon::qdrant::QdrantClient;
use testkit::qdrant::StandInConfig;
use testkit::qdrant_world::QdrantWorld;

type Row = [String; 6];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    if args.iter().any(|a| a == "--real") || std::env::var_os("QDRANT_BENCH_REAL").is_some() {
        let reps = args.iter().position(|a| a == "--reps").and_then(|i| args.get(i + 1)).and_then(|n| n.parse().ok()).unwrap_or(3usize);
        let small = args.iter().any(|a| a == "--small");
        // `--configs 0:4:256,1:3:128`: index (0/1), requests in flight, hashes per request.
        let configs = args.iter().position(|a| a == "--configs").and_then(|i| args.get(i + 1)).map(|c| {
            c.split(',')
                .map(|one| {
                    let f: Vec<&str> = one.split(':').collect();
                    assert!(f.len() == 3, "--configs takes index:parallel:hashes, comma-separated (got {one:?})");
                    (f[0] == "1", f[1].parse().expect("parallel"), f[2].parse().expect("hashes per request"))
                })
                .collect()
        });
        rt.block_on(real::bench(reps.max(1), small, configs, args.iter().any(|a| a == "--grpc")));
    } else {
        rt.block_on(bench());
    }
}

#[path = "qdrant_source/grpc.rs"]
mod grpc;
#[path = "qdrant_source/real.rs"]
mod real;

async fn bench() {
    // RECON's production figures: ~22,100 videos, ~34 concepts each.
    let spec = DemoSpec { content_bytes: 16, malformed_rate: 0.0, concepts_per_window: (6, 12), ..DemoSpec::production() };
    let t = Instant::now();
    let w = QdrantWorld::with_spec(spec, StandInConfig::default()).await;
    let p = &w.points;
    let points = format!("{} points: {} documents' concepts, {} of other sources", p.points, p.points - p.other_source_points, p.other_source_points);
    eprintln!("generated and loaded {points} in {:.1} s", t.elapsed().as_secs_f64());
    let mut table: Vec<Row> = Vec::new();
    profile(&w, &mut table).await;

    for (label, strategy, page, per_request, indexed) in [
        ("scroll_all, page 1000", Strategy::ScrollAll, 1000, 256, false),
        ("defaults: auto → scroll_all (no index), page 5000", Strategy::Auto, 5000, 256, false),
        ("defaults with doc_hash indexed: auto", Strategy::Auto, 5000, 256, true),
        ("filtered (doc_hash indexed), 1000 hashes", Strategy::Filtered, 5000, 1000, true),
    ] {
        if indexed {
            w.qdrant.set_payload_index("doc_hash", "keyword");
        }
        for reuse in [900u64, 0] {
            let db = w.copy_db(&format!("{label}-{reuse}.db"));
            let counts_file = w.dir.path().join(format!("{label}-{reuse}-counts.json"));
            // A new Env per command: each is a separate process in the runbook.
            let env = || {
                w.env(&db, SourceKind::Qdrant, |c| {
                    c.qdrant.strategy = strategy;
                    c.qdrant.page_size = page;
                    c.qdrant.hashes_per_request = per_request;
                    c.qdrant.reuse_counts_secs = reuse;
                    c.qdrant.counts_file = Some(counts_file.clone());
                })
            };
            let (e1, e2, e3) = (env(), env(), env());
            let runs = tokio::task::spawn_blocking(move || {
                let dry = timed(|| companion::engine::backfill(&e1, None, true).expect("dry run"));
                let real = timed(|| companion::engine::backfill(&e2, None, false).expect("backfill"));
                let tie = timed(|| companion::engine::tiebreaker(&e3, None, false).expect("tiebreaker"));
                [dry, real, tie]
            })
            .await
            .expect("join");
            let ties = runs[1].0.tally.status(Status::TiedPass1);
            let saved = if reuse > 0 { "saved counts on" } else { "saved counts off" };
            for (phase, (s, secs)) in ["backfill --dry-run", "backfill", "--tiebreaker-pass"].into_iter().zip(&runs) {
                let recon = if phase == "--tiebreaker-pass" { ties } else { s.selected };
                table.push([
                    label.into(),
                    format!("{phase} ({saved}; {})", s.source_stats.strategy.as_deref().unwrap_or("no scroll")),
                    s.selected.to_string(),
                    format!("{secs:.2}"),
                    s.source_stats.requests.to_string(),
                    recon.to_string(),
                ]);
            }
        }
    }
    println!("\n{points}\n");
    println!("| configuration | command | docs | seconds | requests | RECON requests |");
    println!("|---|---|---|---|---|---|");
    for r in table {
        println!("| {} |", r.join(" | "));
    }
}

fn timed(f: impl FnOnce() -> PassSummary) -> (PassSummary, f64) {
    let t = Instant::now();
    let s = f();
    (s, t.elapsed().as_secs_f64())
}

/// One whole-collection scroll per page size: the client's whole call vs the
/// time inside the stand-in's handler.
async fn profile(w: &QdrantWorld, table: &mut Vec<Row>) {
    for page in [1000u32, 5000] {
        let mut settings = w.config(Path::new("unused"), SourceKind::Qdrant).qdrant;
        settings.page_size = page;
        let client = QdrantClient::new(settings).expect("client");
        let before = w.qdrant.stats();
        let t = Instant::now();
        let batch = client.scroll_all_batch().await.expect("scroll");
        let client_s = t.elapsed().as_secs_f64();
        let server_s = w.qdrant.stats().handler_seconds - before.handler_seconds;
        let row = |phase: String, secs: f64, req: String| {
            [format!("profile, page {page}"), phase, batch.counts.len().to_string(), format!("{secs:.2}"), req, String::new()]
        };
        table.push(row("one scroll of the whole collection (client's whole call)".into(), client_s, batch.requests.to_string()));
        table.push(row("  of which inside the stand-in's handler".into(), server_s, String::new()));
    }
}
