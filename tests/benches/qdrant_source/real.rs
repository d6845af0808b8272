//! The Qdrant bench against a real server: the 1.48M-point collection, each configuration's runbook commands repeated, one table with min/median seconds, requests, Qdrant's time and CPU, and RECON's request count.

use std::time::Instant;

use companion::assign::Status;
use companion::config::qdrant::Strategy;
use companion::config::SourceKind;
use companion::demo::DemoSpec;
use companion::engine::PassSummary;
use testkit::qdrant_real_world::{Load, RealQdrantWorld};

/// One command's repetitions.
struct Runs {
    secs: Vec<f64>,
    last: PassSummary,
    qdrant_cpu: f64,
}

fn min_median(v: &[f64]) -> (f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[0], s[s.len() / 2])
}

/// `configs`: (doc_hash indexed, parallel requests, hashes per request), or the default four.
pub async fn bench(reps: usize, small: bool, configs: Option<Vec<(bool, u32, usize)>>) {
    let spec = DemoSpec { content_bytes: 16, malformed_rate: 0.0, concepts_per_window: (6, 12), ..DemoSpec::production() };
    let load = if small { Load::default() } else { Load { other_share: 0.5, text_bytes: 500, ..Load::default() } };
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
    let mut table: Vec<[String; 8]> = Vec::new();
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
        if indexed && !w.doc_hash_indexed().await {
            w.server.index_doc_hash(&w.collection).await;
            testkit::qdrant_real_world::wait_green(&w.server, &w.collection).await;
        }
        let db = w.copy_db(&format!("{label}.db").replace([' ', ',', '(', ')'], "_"));
        let env = || {
            w.env(&db, SourceKind::Qdrant, |c| {
                c.qdrant.strategy = strategy;
                c.qdrant.parallel_requests = parallel;
                c.qdrant.hashes_per_request = per_request;
                c.qdrant.reuse_counts_secs = 0;
            })
        };
        let pid = w.server.pid();
        let cpu = move || pid.and_then(process_cpu_seconds).unwrap_or(f64::NAN);
        let dry = {
            let mut secs = Vec::new();
            let mut last = None;
            let c0 = cpu();
            for _ in 0..reps {
                // A fresh Env per run: one Env's concept source keeps a memo
                // of what it read, and each run here stands for a new process.
                let e = env();
                let (s, t) = tokio::task::spawn_blocking(move || timed(|| companion::engine::backfill(&e, None, true).expect("dry run"))).await.expect("join");
                secs.push(t);
                last = Some(s);
            }
            let last = last.expect("one run");
            Runs { secs, qdrant_cpu: (cpu() - c0) / reps as f64, last }
        };
        dry_by_config.push(dry.last.tally.by_status.iter().map(|(k, v)| (k.to_string(), *v)).collect());
        // The real run, then the tiebreaker as a separate command, once each (they write).
        let (e1, e2) = (env(), env());
        let c0 = cpu();
        let (real, rt) = tokio::task::spawn_blocking(move || timed(|| companion::engine::backfill(&e1, None, false).expect("backfill"))).await.expect("join");
        let c1 = cpu();
        let (tie, tt) =
            tokio::task::spawn_blocking(move || timed(|| companion::engine::tiebreaker(&e2, None, false).expect("tiebreaker"))).await.expect("join");
        let c2 = cpu();
        let ties = real.tally.status(Status::TiedPass1);
        let runs = [
            ("backfill --dry-run", dry),
            ("backfill", Runs { secs: vec![rt], qdrant_cpu: c1 - c0, last: real }),
            ("--tiebreaker-pass", Runs { secs: vec![tt], qdrant_cpu: c2 - c1, last: tie }),
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
                recon.to_string(),
            ]);
        }
    }
    let same = dry_by_config.windows(2).all(|w| w[0] == w[1]);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\n{header}\n");
    println!("| configuration | command | docs | seconds (min / median) | requests | Qdrant time (s) | Qdrant CPU (s) | RECON requests |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in table {
        println!("| {} |", r.join(" | "));
    }
    println!("\nsame dry-run outcome in every configuration: {same}; load average at the end: {}", load.trim());
    assert!(same, "configurations disagree: {dry_by_config:?}");
}

fn timed(f: impl FnOnce() -> PassSummary) -> (PassSummary, f64) {
    let t = Instant::now();
    let s = f();
    (s, t.elapsed().as_secs_f64())
}

/// User + system CPU seconds of a process (Linux `/proc/{pid}/stat`).
fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks / 100.0)
}
