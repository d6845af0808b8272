//! The Qdrant bench against a real server: the issue's 1.48M-point collection, each configuration's runbook commands repeated, one table with min/median seconds, requests, Qdrant's time and CPU, and RECON's request count.

use std::time::Instant;

use companion::assign::Status;
use companion::config::qdrant::Strategy;
use companion::config::Config;
use companion::engine::PassSummary;
use testkit::qdrant_bench::{issue_load, issue_spec, min_median, process_cpu_seconds, Pass};
use testkit::qdrant_real_world::{Load, RealQdrantWorld};

/// One command's repetitions.
struct Runs {
    secs: Vec<f64>,
    last: PassSummary,
    qdrant_cpu: f64,
    /// This process's CPU per run: the client (and the engine around it).
    own_cpu: f64,
}

/// `configs`: (doc_hash indexed, parallel requests, hashes per request), or the default four.
pub async fn bench(reps: usize, small: bool, configs: Option<Vec<(bool, u32, usize)>>, grpc: bool) {
    let spec = issue_spec(22_000);
    let load = if small { Load::default() } else { issue_load() };
    let t = Instant::now();
    let w = RealQdrantWorld::with_spec(spec, load).await;
    let p = &w.points;
    eprintln!("generated the demo and loaded {} points into a real Qdrant in {:.1} s (upserts {:.1} s)", w.loaded, t.elapsed().as_secs_f64(), w.load_seconds);
    let header = format!(
        "{} points on a real Qdrant ({} of the demo's {} documents, {} of other sources); {} runs each, saved counts off",
        w.loaded,
        p.points - p.other_source_points,
        p.documents,
        w.loaded - (p.points - p.other_source_points),
        reps
    );
    let mut table: Vec<[String; 9]> = Vec::new();
    let configs = configs.unwrap_or_else(|| vec![(false, 1, 256), (false, 4, 256), (true, 1, 256), (true, 4, 256)]);
    let mut dry_by_config: Vec<std::collections::BTreeMap<String, u64>> = Vec::new();
    // Unindexed configurations first: the index, once made, stays.
    let mut configs = configs;
    configs.sort_by_key(|c| c.0);
    for (indexed, parallel, per_request) in configs {
        let strategy = Strategy::Auto;
        let label = format!(
            "{}, {}, {per_request} hashes per request",
            if indexed { "doc_hash indexed" } else { "no index" },
            if parallel == 1 { "1 request at a time".to_string() } else { format!("{parallel} in flight") }
        );
        let label = label.as_str();
        if indexed {
            w.ensure_doc_hash_index().await;
        }
        let db = w.copy_db(&format!("{label}.db").replace([' ', ',', '(', ')'], "_"));
        let tweak = |c: &mut Config| {
            c.qdrant.strategy = strategy;
            c.qdrant.parallel_requests = parallel;
            c.qdrant.hashes_per_request = per_request;
            c.qdrant.reuse_counts_secs = 0;
        };
        let pid = w.server.pid();
        let cpu = move || pid.and_then(process_cpu_seconds).unwrap_or(f64::NAN);
        let own = || process_cpu_seconds(std::process::id()).unwrap_or(f64::NAN);
        let dry = {
            let (c0, o0) = (cpu(), own());
            let (secs, last) = w.dry_runs(&db, reps, tweak).await;
            Runs { secs, qdrant_cpu: (cpu() - c0) / reps as f64, own_cpu: (own() - o0) / reps as f64, last }
        };
        dry_by_config.push(dry.last.tally.by_status.iter().map(|(k, v)| (k.to_string(), *v)).collect());
        // The real run, then the tiebreaker as a separate command, once each (they write).
        let (c0, o0) = (cpu(), own());
        let (real, rt) = w.timed_pass(&db, Pass::Backfill, tweak).await;
        let (c1, o1) = (cpu(), own());
        let (tie, tt) = w.timed_pass(&db, Pass::Tiebreaker, tweak).await;
        let (c2, o2) = (cpu(), own());
        let ties = real.tally.status(Status::TiedPass1);
        let runs = [
            ("backfill --dry-run", dry),
            ("backfill", Runs { secs: vec![rt], qdrant_cpu: c1 - c0, own_cpu: o1 - o0, last: real }),
            ("--tiebreaker-pass", Runs { secs: vec![tt], qdrant_cpu: c2 - c1, own_cpu: o2 - o1, last: tie }),
        ];
        for (phase, r) in runs {
            let (min, med) = min_median(&r.secs);
            let s = &r.last.source_stats;
            let recon = if phase == "--tiebreaker-pass" { ties } else { r.last.selected };
            table.push([
                label.to_string(),
                format!("{phase} ({})", s.strategy.as_deref().unwrap_or("no scroll")),
                r.last.selected.to_string(),
                if r.secs.len() > 1 { format!("{min:.2} / {med:.2}") } else { format!("{min:.2}") },
                s.requests.to_string(),
                format!("{:.2}", s.server_seconds),
                format!("{:.2}", r.qdrant_cpu),
                format!("{:.2}", r.own_cpu),
                recon.to_string(),
            ]);
        }
    }
    let grpc_rows = if grpc { grpc_rows(&w, reps).await } else { Vec::new() };
    let same = dry_by_config.windows(2).all(|w| w[0] == w[1]);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\n{header}\n");
    println!("| configuration | command | docs | seconds (min / median) | requests | Qdrant time (s) | Qdrant CPU (s) | our CPU (s) | RECON requests |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in table {
        println!("| {} |", r.join(" | "));
    }
    if !grpc_rows.is_empty() {
        println!("\nThe same reads with Qdrant's own Rust client (qdrant-client, gRPC): reading and counting only, no engine around it\n");
        println!("| read | documents | seconds (min / median) | requests | wanted points | Qdrant CPU (s) | our CPU (s) |");
        println!("|---|---|---|---|---|---|---|");
        for r in grpc_rows {
            println!("| {} |", r.join(" | "));
        }
    }
    println!("\nsame dry-run outcome in every configuration: {same}; load average at the end: {}", load.trim());
    assert!(same, "configurations disagree: {dry_by_config:?}");
}

/// gRPC rows: the whole collection in 3 slices, and (doc_hash indexed by
/// then) `match.any` chunks of 128 hashes, 3 in flight: the companion's defaults.
async fn grpc_rows(w: &RealQdrantWorld, reps: usize) -> Vec<[String; 7]> {
    let db = w.copy_db("grpc.db");
    let wanted: Vec<String> = {
        let c = rusqlite::Connection::open(&db).unwrap();
        let mut st = c.prepare("SELECT hash FROM documents WHERE recon_domain IS NULL OR recon_domain_status = 'needs_reprocess'").unwrap();
        st.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    let mut rows = Vec::new();
    let mut points = Vec::new();
    let indexed = w.doc_hash_indexed().await;
    for (label, filtered) in [("whole collection, 3 slices in flight", false), ("match.any, 128 hashes, 3 in flight", true)] {
        if filtered && !indexed {
            continue;
        }
        let mut runs = Vec::new();
        for _ in 0..reps {
            runs.push(super::grpc::read(w, &wanted, filtered, 3, 128, 5000).await);
        }
        let secs: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
        let (min, med) = min_median(&secs);
        let last = runs.last().unwrap();
        let n = reps as f64;
        points.push((last.points, last.documents));
        rows.push([
            label.to_string(),
            format!("{} ({} with points)", wanted.len(), last.documents),
            format!("{min:.2} / {med:.2}"),
            last.requests.to_string(),
            last.points.to_string(),
            format!("{:.2}", runs.iter().map(|r| r.server_cpu).sum::<f64>() / n),
            format!("{:.2}", runs.iter().map(|r| r.own_cpu).sum::<f64>() / n),
        ]);
    }
    assert!(points.windows(2).all(|p| p[0] == p[1]), "gRPC reads disagree: {points:?}");
    rows
}
