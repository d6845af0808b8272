//! The engine on the Qdrant source against the stand-in: RECON's Qdrant algorithm row by row (Python reference), agreement with the files source, request budgets, and every fault path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use companion::config::qdrant::Strategy;
use companion::config::Config;
use companion::config::SourceKind;
use companion::recon::source::verify_qdrant;
use companion::Error;
use rusqlite::Connection;
use testkit::qdrant::{QdrantStandIn, StandInConfig};
use testkit::qdrant_world::{QdrantWorld as World, SOURCE};

/// Each document's (hash, domain, status), by hash.
pub(crate) type Rows = Vec<(String, Option<String>, Option<String>)>;

pub(crate) fn rows(db: &Path) -> Rows {
    let c = Connection::open(db).expect("open");
    let mut s = c.prepare("SELECT hash, recon_domain, recon_domain_status FROM documents ORDER BY hash").expect("prep");
    let r = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("q").collect::<Result<Vec<_>, _>>().expect("rows");
    r
}

pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

/// RECON's Qdrant-era algorithm in Python (`tests/python/recon_qdrant_reference.py`) on `db` against `url`.
pub(crate) fn python_reference(db: &Path, url: &str, args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/recon_qdrant_reference.py");
    let out =
        Command::new("python3").arg(&script).args(["--db", &db.display().to_string(), "--url", url]).args(args).output().expect("python3 must be installed");
    assert!(out.status.success(), "reference {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("reference json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qdrant_runbook_matches_recons_qdrant_algorithm_row_by_row() {
    for (docs, seed, strategy) in [(900, 3, Strategy::Auto), (1500, 8, Strategy::Filtered), (1500, 8, Strategy::ScrollAll)] {
        let w = World::new(docs, seed, StandInConfig::default()).await;
        let (ours, theirs) = (w.copy_db("ours.db"), w.copy_db("theirs.db"));
        // Separate runs, as the runbook's commands are, with saved counts on
        // (the default): the tiebreaker decides on what the backfill read.
        let tweak = |c: &mut Config| {
            c.qdrant.strategy = strategy;
            c.qdrant.page_size = 97; // pages cut across documents
            c.qdrant.hashes_per_request = 50;
            c.qdrant.reuse_counts_secs = 900;
        };
        let (e1, e2) = (w.env(&ours, SourceKind::Qdrant, tweak), w.env(&ours, SourceKind::Qdrant, tweak));
        let b = blocking(move || {
            let b = companion::engine::backfill(&e1, None, false).expect("backfill");
            let t = companion::engine::tiebreaker(&e2, None, false).expect("tiebreaker");
            (b, t)
        })
        .await;
        let url = w.qdrant.url();
        let th = theirs.clone();
        let (rb, rt) = blocking(move || (python_reference(&th, &url, &["backfill"]), python_reference(&th, &url, &["tiebreaker"]))).await;
        let (a, z) = (rows(&ours), rows(&theirs));
        let diffs: Vec<_> = a.iter().zip(&z).filter(|(x, y)| x != y).take(10).collect();
        assert!(diffs.is_empty(), "seed {seed} {strategy:?}: rows differ (ours, reference): {diffs:#?}");
        for st in ["assigned", "tied_pass_2", "tied_manual", "no_concepts"] {
            assert!(a.iter().any(|r| r.2.as_deref() == Some(st)), "seed {seed}: no {st} row");
        }
        assert!(!a.iter().any(|r| r.2.as_deref() == Some("needs_reprocess")), "a healthy Qdrant leaves nothing to reprocess");
        // Budget: ours is a handful of requests, RECON's one per document (+ one per tie).
        let recon_requests = rb["requests"].as_u64().unwrap_or(0) + rt["requests"].as_u64().unwrap_or(0);
        let our_requests = b.0.source_stats.requests + b.1.source_stats.requests;
        assert!(our_requests * 3 < recon_requests, "ours {our_requests} vs RECON {recon_requests}");
        assert_eq!(b.0.errors + b.1.errors, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sources_agree_where_the_files_are_complete() {
    let w = World::new(800, 5, StandInConfig::default()).await;
    let db = w.copy_db("r.db");
    let (fe, qe) = (w.env(&db, SourceKind::Files, |_| {}), w.env(&db, SourceKind::Qdrant, |_| {}));
    // The demo writes points for PeerTube videos only (other documents are not its business).
    let hashes: Vec<String> = {
        let c = Connection::open(&db).expect("open");
        let mut st = c.prepare("SELECT hash FROM catalogue WHERE source = ?1").expect("prep");
        let h = st.query_map([SOURCE], |r| r.get(0)).expect("q").collect::<Result<Vec<String>, _>>().expect("rows");
        h
    };
    let (f, q) = blocking(move || (fe.counts(&hashes, "f").expect("files"), qe.counts(&hashes, "q").expect("qdrant"))).await;
    let (mut agree, mut qdrant_only) = (0, 0);
    for (fs, qs) in f.scans.iter().zip(&q.scans) {
        if fs.dir_found && fs.total() > 0 {
            assert_eq!(fs.totals, qs.totals);
            agree += 1;
        } else if qs.total() > 0 {
            qdrant_only += 1;
        }
    }
    assert!(agree > 300 && qdrant_only > 10, "{agree} {qdrant_only}");
    // Same selection, same rules: the dry runs agree on every concept-bearing document.
    let (fe, qe) = (w.env(&db, SourceKind::Files, |_| {}), w.env(&db, SourceKind::Qdrant, |_| {}));
    let (fs, qs) =
        blocking(move || (companion::engine::backfill(&fe, None, true).expect("files"), companion::engine::backfill(&qe, None, true).expect("qdrant"))).await;
    assert_eq!(fs.selected, qs.selected);
    assert_eq!(qs.tally.status(companion::assign::Status::NeedsReprocess), 0);
    assert!(qs.tally.status(companion::assign::Status::Assigned) > fs.tally.status(companion::assign::Status::Assigned));
}

/// A clean run's rows, for comparing faulty runs with.
async fn clean_rows(w: &World) -> Vec<(String, Option<String>, Option<String>)> {
    let db = w.copy_db("clean.db");
    let env = w.env(&db, SourceKind::Qdrant, |c| c.qdrant.strategy = Strategy::Filtered);
    blocking(move || companion::engine::backfill(&env, None, false).expect("clean")).await;
    rows(&db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_and_change_nothing() {
    let w = World::new(400, 9, StandInConfig::default()).await;
    let want = clean_rows(&w).await;
    type Fault = fn(&QdrantStandIn);
    let faults: [(&str, Fault); 4] = [
        ("429", |q| q.rate_limit_next(Some(0), 2)),
        ("500", |q| q.fail_next(500, 3)),
        ("slow page", |q| q.delay_next(Duration::from_secs(3), 1)),
        ("dropped connection mid-scroll", |q| q.drop_scroll(2)),
    ];
    for (name, inject) in faults {
        let db = w.copy_db(&format!("{name}.db"));
        let env = w.env(&db, SourceKind::Qdrant, |c| {
            c.qdrant.strategy = Strategy::Filtered;
            c.qdrant.page_size = 200;
            c.qdrant.hashes_per_request = 64;
        });
        w.qdrant.clear_faults();
        w.qdrant.reset_stats();
        inject(&w.qdrant);
        let s = blocking(move || companion::engine::backfill(&env, None, false)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        // More attempts reached the server than the run's requests: retries happened.
        assert!(w.qdrant.stats().requests > s.source_stats.requests - s.source_stats.retries, "{name}: no retry");
        assert_eq!(s.errors, 0, "{name}");
        assert_eq!(rows(&db), want, "{name}");
    }
    w.qdrant.clear_faults();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_marks_its_documents_and_a_rerun_finishes() {
    let w = World::new(400, 10, StandInConfig::default()).await;
    let want = clean_rows(&w).await;
    let db = w.copy_db("r.db");
    let hashes: Vec<String> = rows(&db).into_iter().map(|r| r.0).collect();
    let env = w.env(&db, SourceKind::Qdrant, |c| {
        c.qdrant.strategy = Strategy::Filtered;
        c.qdrant.hashes_per_request = 1;
        c.qdrant.retries = 1;
        // Saved counts on: the failed document must not be among them.
        c.qdrant.reuse_counts_secs = 900;
    });
    // One document's requests always fail: it alone becomes needs_reprocess, an error.
    w.qdrant.fail_matching(&hashes[7], 500);
    let e2 = env.clone();
    let s = blocking(move || companion::engine::backfill(&e2, None, false).expect("backfill")).await;
    w.qdrant.clear_faults();
    let got = rows(&db);
    let wrong: Vec<_> = got.iter().zip(&want).filter(|(a, b)| a != b).collect();
    if hashes_complete(&db, &hashes[7]) {
        assert_eq!(s.errors, 1);
        assert_eq!(wrong.len(), 1);
        assert_eq!(wrong[0].0 .2.as_deref(), Some("needs_reprocess"));
    }
    let again = blocking(move || companion::engine::backfill(&env, None, false).expect("rerun")).await;
    assert_eq!(again.errors, 0);
    if hashes_complete(&db, &hashes[7]) {
        // Only the failed document was read again (one request per document
        // here, plus the collection check and its write marks); the rest came
        // from the saved counts.
        let st = &again.source_stats;
        assert_eq!((st.memo_hits, st.requests), (again.selected - 1, 3), "{st:?}");
    }
    assert_eq!(rows(&db), want, "the rerun re-selects needs_reprocess and finishes");
}

fn hashes_complete(db: &Path, h: &str) -> bool {
    let c = Connection::open(db).expect("open");
    c.query_row("SELECT d.status = 'complete' AND c.source = ?2 FROM documents d JOIN catalogue c ON c.hash = d.hash WHERE d.hash = ?1", [h, SOURCE], |r| {
        r.get(0)
    })
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outages_abort_with_a_clear_cause_and_write_nothing() {
    let w = World::new(300, 11, StandInConfig::default()).await;
    let want = clean_rows(&w).await;
    let pristine = rows(&w.copy_db("p.db"));

    // An outage mid-run: every request fails after the first chunk.
    let db = w.copy_db("outage.db");
    let env = w.env(&db, SourceKind::Qdrant, |c| {
        c.qdrant.strategy = Strategy::Filtered;
        c.qdrant.hashes_per_request = 20;
        c.qdrant.retries = 1;
    });
    w.qdrant.fail_matching("doc_hash", 503);
    let e2 = env.clone();
    let err = blocking(move || companion::engine::backfill(&e2, None, false)).await.expect_err("outage");
    assert!(err.to_string().contains("in a row"), "{err}");
    assert_eq!(rows(&db), pristine, "nothing of the aborted run is written");
    let reports: Vec<_> = std::fs::read_dir(w.dir.path().join("reports")).expect("reports").flatten().collect();
    let failed = reports.iter().any(|r| std::fs::read_to_string(r.path()).is_ok_and(|t| t.contains("\"failed\"") && t.contains("in a row")));
    assert!(failed, "the report says what happened");
    w.qdrant.clear_faults();
    blocking(move || companion::engine::backfill(&env, None, false).expect("rerun")).await;
    assert_eq!(rows(&db), want);

    // Missing collection and unreachable server: clear errors, dry run or not.
    let db = w.copy_db("missing.db");
    let env = w.env(&db, SourceKind::Qdrant, |c| c.qdrant.collection = "nope".into());
    let err = blocking(move || companion::engine::backfill(&env, None, true)).await.expect_err("missing");
    assert!(matches!(err, Error::QdrantCollectionMissing { .. }), "{err}");
    let env = w.env(&db, SourceKind::Qdrant, |c| c.qdrant.url = "http://127.0.0.1:9".into());
    let err = blocking(move || companion::engine::backfill(&env, None, false)).await.expect_err("unreachable");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    assert_eq!(rows(&db), pristine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_from_the_environment() {
    let w = World::new(200, 12, StandInConfig { api_key: Some("s3cret".into()), ..StandInConfig::default() }).await;
    let db = w.copy_db("k.db");
    let env = w.env(&db, SourceKind::Qdrant, |c| c.qdrant.api_key_env = "RECON_COMPANION_TEST_QDRANT_KEY_9A1".into());
    let e2 = env.clone();
    let err = blocking(move || companion::engine::backfill(&e2, None, true)).await.expect_err("no key");
    assert!(err.to_string().contains("401") && err.to_string().contains("no api key"), "{err}");
    std::env::set_var("RECON_COMPANION_TEST_QDRANT_KEY_9A1", "s3cret");
    let s = blocking(move || companion::engine::backfill(&env, None, true)).await.expect("with key");
    std::env::remove_var("RECON_COMPANION_TEST_QDRANT_KEY_9A1");
    assert!(s.tally.status(companion::assign::Status::Assigned) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprocess_with_qdrant_never_touches_concept_dirs_and_verify_reports_the_index() {
    let w = World::new(300, 13, StandInConfig::default()).await;
    let db = w.copy_db("r.db");
    // Some needs_reprocess rows: the files source's backfill makes them.
    let fenv = w.env(&db, SourceKind::Files, |_| {});
    blocking(move || companion::engine::backfill(&fenv, None, false).expect("files backfill")).await;
    let before: Vec<_> = std::fs::read_dir(w.data().join("concepts")).expect("dir").flatten().map(|e| e.file_name()).collect();
    let qenv = w.env(&db, SourceKind::Qdrant, |_| {});
    let s = blocking(move || companion::engine::reprocess(&qenv, None, false).expect("reprocess")).await;
    assert!(s.queued > 0 && s.dirs_quarantined == 0 && s.items.iter().all(|i| i.quarantined_to.is_none()));
    let after: Vec<_> = std::fs::read_dir(w.data().join("concepts")).expect("dir").flatten().map(|e| e.file_name()).collect();
    assert_eq!(before.len(), after.len());

    let settings = w.config(&db, SourceKind::Qdrant).qdrant;
    let (s2, db2) = (settings.clone(), db.clone());
    let c = blocking(move || verify_qdrant(&s2, &db2, SOURCE, 10)).await;
    assert!(c.ok && c.collection_found && !c.doc_hash_indexed, "{c:?}");
    assert!(c.index_advice.as_deref().is_some_and(|a| a.contains("\"field_name\":\"doc_hash\"")));
    w.qdrant.set_payload_index("doc_hash", "keyword");
    let (s2, db2) = (settings.clone(), db.clone());
    let c = blocking(move || verify_qdrant(&s2, &db2, SOURCE, 10)).await;
    assert!(c.ok && c.doc_hash_indexed && c.index_advice.is_none() && c.sample_found > 0, "{c:?}");
    let mut gone = settings;
    gone.collection = "nope".into();
    let c = blocking(move || verify_qdrant(&gone, &db, SOURCE, 10)).await;
    assert!(!c.ok && !c.collection_found && c.error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_memo_the_tiebreaker_after_a_whole_collection_scroll_asks_nothing() {
    let w = World::new(600, 14, StandInConfig::default()).await;
    // Reference: separate runs, no memo.
    let plain = w.copy_db("plain.db");
    let mut env = w.env(&plain, SourceKind::Qdrant, |c| c.qdrant.strategy = Strategy::ScrollAll);
    env.concepts = env.concepts.without_memo();
    let cold = blocking(move || {
        companion::engine::backfill(&env, None, false).expect("backfill");
        companion::engine::tiebreaker(&env, None, false).expect("tiebreaker")
    })
    .await;
    assert!(cold.selected > 0 && cold.source_stats.requests > 1, "a cold tiebreaker scrolls: {:?}", cold.source_stats);
    // One process sharing a memo: the tiebreaker's channel-mates (never selected
    // by this backfill included) come from the backfill's whole-collection scroll.
    let memo = w.copy_db("memo.db");
    let mut env = w.env(&memo, SourceKind::Qdrant, |c| c.qdrant.strategy = Strategy::ScrollAll);
    env.concepts = env.concepts.with_memo();
    w.qdrant.reset_stats();
    let (b, t) = blocking(move || {
        (companion::engine::backfill(&env, None, false).expect("backfill"), companion::engine::tiebreaker(&env, None, false).expect("tiebreaker"))
    })
    .await;
    assert_eq!(t.selected, cold.selected);
    // Two requests: the collection info and its write marks confirming the counts still hold.
    assert_eq!((t.source_stats.requests, t.source_stats.memo_hits > 0), (2, true), "{:?}", t.source_stats);
    assert_eq!(w.qdrant.stats().requests, b.source_stats.requests + 2, "no scroll reached Qdrant after the backfill");
    assert_eq!(w.qdrant.stats().scroll_requests, b.source_stats.requests - 2);
    assert_eq!(rows(&memo), rows(&plain), "same rows with and without the memo");
}

/// The runbook's commands are separate processes: the tiebreaker reuses the
/// counts the backfill saved while the collection is unchanged, reads again
/// when it changed or the file is unusable, and never saves a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_counts_carry_from_the_backfill_to_a_separate_tiebreaker_run() {
    let w = World::new(600, 15, StandInConfig::default()).await;
    let reuse = |c: &mut Config| {
        c.qdrant.strategy = Strategy::ScrollAll;
        c.qdrant.reuse_counts_secs = 900;
    };
    let plain = w.copy_db("plain.db");
    let env = w.env(&plain, SourceKind::Qdrant, |c| c.qdrant.strategy = Strategy::ScrollAll);
    blocking(move || {
        companion::engine::backfill(&env, None, false).expect("backfill");
        companion::engine::tiebreaker(&env, None, false).expect("tiebreaker")
    })
    .await;
    let file = w.dir.path().join("reports/qdrant-counts.json");
    assert!(!file.exists(), "reuse off: nothing saved");

    let db = w.copy_db("saved.db");
    let (e1, e2) = (w.env(&db, SourceKind::Qdrant, reuse), w.env(&db, SourceKind::Qdrant, reuse));
    let b = blocking(move || companion::engine::backfill(&e1, None, false).expect("backfill")).await;
    assert!(file.is_file(), "the backfill saved its counts");
    assert!(b.source_stats.requests > 2);
    w.qdrant.reset_stats();
    let t = blocking(move || companion::engine::tiebreaker(&e2, None, false).expect("tiebreaker")).await;
    assert!(t.selected > 0);
    assert_eq!((t.source_stats.requests, w.qdrant.stats().scroll_requests), (2, 0), "{:?}", t.source_stats);
    assert!(t.source_stats.saved_counts.as_deref().is_some_and(|m| m.starts_with("reused counts read")), "{:?}", t.source_stats);
    assert_eq!(rows(&db), rows(&plain), "same rows as runs that read Qdrant each time");

    // RECON adds a point: the collection changed, so the next run reads again.
    let again = w.copy_db("again.db");
    w.qdrant.add_point(u64::MAX - 1, serde_json::json!({"doc_hash": "zzzz", "domain": "Medical"}));
    let e3 = w.env(&again, SourceKind::Qdrant, reuse);
    let d = blocking(move || companion::engine::backfill(&e3, None, true).expect("dry run")).await;
    assert!(d.source_stats.requests > 2, "{:?}", d.source_stats);
    assert!(d.source_stats.saved_counts.as_deref().is_some_and(|m| m.contains("points, ") && m.starts_with("not reused")), "{:?}", d.source_stats);

    // A damaged file is named and read around, never fatal.
    std::fs::write(&file, b"{damaged").expect("write");
    let e4 = w.env(&again, SourceKind::Qdrant, reuse);
    let d2 = blocking(move || companion::engine::backfill(&e4, None, true).expect("dry run")).await;
    assert_eq!(d2.tally.by_status, d.tally.by_status);
    assert!(d2.source_stats.saved_counts.as_deref().is_some_and(|m| m.contains("qdrant-counts.json")), "{:?}", d2.source_stats);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("rewritten whole");
    assert_eq!(saved["whole_collection"], true);
}
