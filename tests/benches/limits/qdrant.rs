//! The real-Qdrant section: the issue's collection on a real server, our dry runs (min of 3) without and with the doc_hash index and the tiebreaker after a backfill, against `recon_qdrant_reference.py` where it finishes in minutes.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use companion::config::Config;
use companion::demo::bench::run_measured;
use serde_json::Value;
use testkit::qdrant_bench::{issue_load, issue_spec, min_median, process_cpu_seconds, Pass, TickCost};
use testkit::qdrant_real_world::RealQdrantWorld;

use super::{cores, workspace, Row};

/// Our defaults, with saved counts off: every run reads Qdrant.
fn defaults(c: &mut Config) {
    c.qdrant.reuse_counts_secs = 0;
    c.qdrant.reuse_unchanged_counts = false;
}

/// Our defaults as shipped: counts saved by a run answer the next while
/// Qdrant proves the collection unchanged.
fn shipped(c: &mut Config) {
    c.qdrant.reuse_counts_secs = 0;
    c.qdrant.reuse_unchanged_counts = true;
}

/// `recon_qdrant_reference.py --db X --url U <cmd>` (writes): its counts and seconds.
fn reference(w: &RealQdrantWorld, db: &Path, cmd: &str) -> (Value, f64) {
    let mut c = Command::new("python3");
    c.arg(workspace().join("tests/python/recon_qdrant_reference.py"))
        .arg("--db")
        .arg(db)
        .arg("--url")
        .arg(w.server.url())
        .arg("--collection")
        .arg(&w.collection)
        .arg(cmd);
    let r = run_measured(c).unwrap_or_else(|e| panic!("recon_qdrant_reference.py {cmd}: {e}"));
    let v: Value = serde_json::from_str(&r.stdout).expect("recon_qdrant_reference.py JSON");
    (v["counts"].clone(), r.seconds)
}

fn counts(s: &companion::engine::PassSummary) -> Value {
    serde_json::to_value(&s.tally.by_status).expect("counts")
}

/// Item 2 on `videos` videos (22,000: the issue's 1.48M points; 2,000: ~150K).
pub async fn section(videos: usize) -> Vec<Row> {
    let t = Instant::now();
    let w = RealQdrantWorld::with_spec(issue_spec(videos), issue_load()).await;
    eprintln!("loaded {} points into a real Qdrant in {:.0} s", w.loaded, t.elapsed().as_secs_f64());
    let size = format!("{videos} videos, {} points", w.loaded);
    // The issue's own measurements of RECON 299be21 (one scroll per document).
    let (issue_unindexed, issue_indexed, issue_tie) = if videos == 22_000 {
        ("(hours), issue's figure", "58.0 s, issue's figure", "43.0 s, issue's figure")
    } else {
        ("395 s at 2,000 videos / 135K points, issue's figure", "18.5 s at 2,000 / 135K, issue's figure", "2.0 s at 2,000 / 135K, issue's figure")
    };
    let mut rows = Vec::new();
    let mut outcomes = Vec::new();
    for indexed in [false, true] {
        let label = if indexed { "doc_hash indexed" } else { "no index" };
        if indexed {
            w.ensure_doc_hash_index().await;
        }
        eprintln!("{label}: 3 dry runs, backfill, tiebreaker…");
        let db = w.copy_db(&format!("limits-{}.db", if indexed { "indexed" } else { "unindexed" }));
        let server_cpu = || w.server.pid().and_then(process_cpu_seconds).unwrap_or(f64::NAN);
        let c0 = server_cpu();
        let (secs, dry) = w.dry_runs(&db, 3, defaults).await;
        let qdrant_cpu = (server_cpu() - c0) / secs.len() as f64;
        let (min, med) = min_median(&secs);
        // The backfill reads (no saved counts yet) and saves what it read for the tiebreaker.
        let counts_file = w.config(&db, companion::config::SourceKind::Qdrant).qdrant_counts_file();
        let _ = std::fs::remove_file(&counts_file);
        let (_, back_s) = w.timed_pass(&db, Pass::Backfill, shipped).await;
        let (tie, tie_s) = w.timed_pass(&db, Pass::Tiebreaker, shipped).await;
        let _ = std::fs::remove_file(&counts_file);
        outcomes.push((counts(&dry), counts(&tie)));
        let ticks = service_ticks(&w, &db, indexed).await;
        let (recon_dry, recon_tie, same) = if indexed {
            eprintln!("recon_qdrant_reference.py on the indexed collection: backfill, tiebreaker…");
            let rdb = w.copy_db("limits-reference.db");
            let (rc, rs) = reference(&w, &rdb, "backfill");
            let (tc, ts) = reference(&w, &rdb, "tiebreaker");
            let same = rc == counts(&dry) && tc == counts(&tie);
            if !same {
                eprintln!("counts differ: ours {} / {}, reference {rc} / {tc}", counts(&dry), counts(&tie));
            }
            (
                format!("{rs:.1} s (recon_qdrant_reference.py backfill; {issue_indexed})"),
                format!("{ts:.1} s (reference; {issue_tie})"),
                format!("; same counts as the reference: {same}"),
            )
        } else {
            (issue_unindexed.to_string(), "— (a full scan per tie)".to_string(), String::new())
        };
        rows.push(Row::new(
            "2 qdrant",
            format!("backfill --dry-run, {label}, {size}; min / median of 3 (requests {}){same}", dry.source_stats.requests),
            format!("{min:.2} / {med:.2} s"),
            recon_dry,
            "< 2 s",
            Some(min < 2.0),
        ));
        let floor = qdrant_cpu / cores() as f64;
        rows.push(Row::new(
            "2 qdrant",
            format!("floor, {label}: Qdrant's own CPU for one dry run's reads ({qdrant_cpu:.2} s: the payloads of the points read) ÷ {} cores, before any client CPU", cores()),
            format!("{floor:.2} s"),
            "—",
            "below 2 s",
            Some(floor < 2.0),
        ));
        rows.push(Row::new(
            "2 qdrant",
            format!(
                "--tiebreaker-pass after a backfill ({back_s:.2} s), {label}: requests {}, scrolls: {}; of {} documents asked, {} from the backfill's saved counts; saved counts: {}",
                tie.source_stats.requests,
                tie.source_stats.strategy.as_deref().unwrap_or("none"),
                tie.source_stats.documents,
                tie.source_stats.memo_hits,
                tie.source_stats.saved_counts.as_deref().unwrap_or("—")
            ),
            format!("{tie_s:.2} s"),
            recon_tie,
            "asks for nothing new",
            // Reads left are documents the backfill never read (channel-mates
            // it did not select): new to the saved counts, not asked twice.
            None,
        ));
        rows.extend(ticks);
    }
    let agree = outcomes.windows(2).all(|p| p[0] == p[1]);
    rows.push(Row::new("2 qdrant", "same outcomes with and without the index", agree.to_string(), "—", "true", Some(agree)));
    rows
}

/// The service's worker ticks on the backfilled `db`: none new, then a trickle
/// of 1 and 10 new documents (RECON finishing them), each a fresh service.
async fn service_ticks(w: &RealQdrantWorld, db: &Path, indexed: bool) -> Vec<Row> {
    let assigned: Vec<String> = {
        let c = rusqlite::Connection::open(db).expect("open");
        let mut q = c.prepare("SELECT hash FROM documents WHERE recon_domain_status = 'assigned' ORDER BY hash LIMIT 11").expect("prepare");
        q.query_map([], |r| r.get(0)).expect("query").collect::<Result<_, _>>().expect("hashes")
    };
    let label = if indexed { "doc_hash indexed" } else { "no index" };
    let mut rows = Vec::new();
    for fresh in [&assigned[..0], &assigned[..1], &assigned[1..11]] {
        let c: TickCost = w.tick_cost(db, fresh, defaults).await;
        eprintln!("service tick, {} new, {label}: {c:?}", fresh.len());
        rows.push(Row::new(
            "2 qdrant",
            format!("service tick, {} new documents ({} assigned), {label}: requests {}, Qdrant CPU", fresh.len(), c.assigned, c.requests),
            format!("{:.3} s CPU, {:.2} s wall", c.server_cpu, c.wall_seconds),
            "—",
            "∝ new documents",
            None,
        ));
    }
    rows
}
