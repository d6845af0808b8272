//! The Qdrant side of the runbook against a real Qdrant 1.19 server started in a temp dir: backfill (dry and real), tiebreaker, explain, compare-sources, verify-qdrant and the service's worker tick, with and without a doc_hash index, api-key auth, strict mode, and faults made for real (server killed mid-scroll, collection deleted, wrong key).
//!
//! Every result is compared with the in-process stand-in's on the same data
//! and with RECON's algorithm in Python (`tests/python/recon_qdrant_reference.py`).
//! Without a Qdrant binary every test fails, saying how to provide one
//! (`QDRANT_BIN`, `../shared/qdrant/qdrant`, or `qdrant` on PATH).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use std::path::Path;

use companion::config::qdrant::Strategy;
use companion::config::Config;
use companion::config::SourceKind;
use companion::recon::source::verify_qdrant;
use companion::Error;
use rusqlite::Connection;
use serde_json::json;
use testkit::qdrant::StandInConfig;
use testkit::qdrant_bench::NoPush;
use testkit::qdrant_real_world::{CountingProxy, Load, RealQdrantWorld as Real};
use testkit::qdrant_world::{QdrantWorld, SOURCE};

use crate::qdrant_source::{blocking, python_reference, rows, Rows};

async fn runbook(env: impl Fn() -> companion::context::Env, db: &Path) -> (Rows, companion::engine::PassSummary, companion::engine::PassSummary) {
    let (e0, e1, e2) = (env(), env(), env());
    let before = rows(db);
    let (dry, b, t) = blocking(move || {
        let dry = companion::engine::backfill(&e0, None, true).expect("dry run");
        let b = companion::engine::backfill(&e1, None, false).expect("backfill");
        let t = companion::engine::tiebreaker(&e2, None, false).expect("tiebreaker");
        (dry, b, t)
    })
    .await;
    assert_eq!(dry.tally.by_status, b.tally.by_status, "the dry run predicts the backfill");
    assert!(b.errors == 0 && t.errors == 0);
    let after = rows(db);
    assert_ne!(before, after);
    (after, b, t)
}

fn tweak(strategy: Strategy) -> impl Fn(&mut Config) + Clone {
    move |c: &mut Config| {
        c.qdrant.strategy = strategy;
        c.qdrant.page_size = 97; // pages cut across documents
        c.qdrant.hashes_per_request = 50;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_on_a_real_qdrant_matches_the_stand_in_and_recons_python() {
    let (docs, seed) = (300, 21);
    let real = Real::new(docs, seed, Load::default()).await;
    let stand = QdrantWorld::new(docs, seed, StandInConfig::default()).await;
    assert_eq!(real.points.points, stand.points.points, "same demo data");
    // The stand-in's answers: the reference every real run must equal.
    let sdb = stand.copy_db("stand.db");
    let (want, _, _) = runbook(|| stand.env(&sdb, SourceKind::Qdrant, tweak(Strategy::Auto)), &sdb).await;
    for st in ["assigned", "tied_pass_2", "tied_manual", "no_concepts"] {
        assert!(want.iter().any(|r| r.2.as_deref() == Some(st)), "no {st} row");
    }
    for indexed in [false, true] {
        if indexed {
            real.server.index_doc_hash(&real.collection).await;
        }
        for strategy in [Strategy::Auto, Strategy::Filtered, Strategy::ScrollAll] {
            let db = real.copy_db(&format!("{indexed}-{strategy:?}.db"));
            let (got, b, t) = runbook(|| real.env(&db, SourceKind::Qdrant, tweak(strategy)), &db).await;
            let diffs: Vec<_> = got.iter().zip(&want).filter(|(a, b)| a != b).take(5).collect();
            assert!(diffs.is_empty(), "indexed {indexed} {strategy:?}: real and stand-in differ: {diffs:#?}");
            let used = b.source_stats.strategy.clone().unwrap_or_default();
            match strategy {
                // Unindexed, many documents: one scroll. Indexed, the estimated
                // share decides (the demo's videos hold most of this collection).
                Strategy::Auto if !indexed => assert_eq!(used, "scroll_all", "{:?}", b.source_stats),
                Strategy::Auto => {}
                s => assert_eq!(used, s.as_str(), "{:?}", b.source_stats),
            }
            assert!(b.source_stats.server_seconds > 0.0 && t.source_stats.requests > 0, "{:?}", b.source_stats);
        }
    }
    // RECON's own algorithm (one scroll per document) on the real, indexed server.
    let pdb = real.copy_db("python.db");
    let (url, p2) = (real.server.url(), pdb.clone());
    blocking(move || {
        python_reference(&p2, &url, &["backfill"]);
        python_reference(&p2, &url, &["tiebreaker"]);
    })
    .await;
    let diffs: Vec<_> = rows(&pdb).into_iter().zip(&want).filter(|(a, b)| a != *b).take(5).collect();
    assert!(diffs.is_empty(), "RECON's Python and ours differ on the real server: {diffs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_explain_and_compare_sources_on_a_real_qdrant() {
    let real = Real::new(250, 22, Load::default()).await;
    let db = real.copy_db("v.db");
    let settings = real.config(&db, SourceKind::Qdrant).qdrant;
    let (s2, d2) = (settings.clone(), db.clone());
    let c = blocking(move || verify_qdrant(&s2, &d2, SOURCE, 10)).await;
    assert!(c.ok && c.collection_found && !c.doc_hash_indexed && c.sample_found > 0, "{c:?}");
    assert_eq!(c.points_count, Some(real.loaded));
    // A single-node server numbers the upserts that loaded it: saved counts can be proven fresh.
    let marks = c.write_marks.clone().expect("a single-node real Qdrant shows its write marks");
    assert!(!marks.is_empty() && marks.iter().all(|&op| op > 0), "{marks:?}");
    assert!(c.index_advice.as_deref().is_some_and(|a| a.contains("\"field_name\":\"doc_hash\"")), "{c:?}");
    // The advice's own command, run on the real server, is what makes the index.
    real.server.index_doc_hash(&real.collection).await;
    let (s2, d2) = (settings.clone(), db.clone());
    let c = blocking(move || verify_qdrant(&s2, &d2, SOURCE, 10)).await;
    assert!(c.ok && c.doc_hash_indexed && c.index_advice.is_none(), "{c:?}");

    // compare-sources: the files and the real Qdrant over the backfill's selection.
    let cfg = real.config(&db, SourceKind::Qdrant);
    let ctx = companion::cli::Ctx { context: companion::context::Context::new(cfg.clone()), json: true };
    let cmp = blocking(move || companion::cli::sources::compare(&ctx, None).expect("compare")).await;
    assert!(cmp.selected > 0 && cmp.by_kind.get("agree").copied().unwrap_or(0) > 0, "{cmp:?}");
    assert!(cmp.by_kind.get("missing_in_files").copied().unwrap_or(0) > 0, "Qdrant holds what the files lost: {cmp:?}");
    assert!(!cmp.by_kind.contains_key("qdrant_error"), "{cmp:?}");

    // explain: both sources side by side for one document Qdrant alone knows.
    let h = cmp.rows.iter().find(|r| r.kind == companion::cli::sources::Diff::MissingInFiles).expect("a missing_in_files row").hash.clone();
    let env = companion::context::Env::from_config(&cfg);
    let e = blocking(move || {
        let conn = companion::recon::db::open_readonly(&db).expect("open");
        companion::explain::explain(&env, &conn, &h).expect("explain")
    })
    .await;
    let s = e.sources.as_ref().expect("both sources are configured");
    assert_eq!(s.configured, "qdrant");
    assert!(s.qdrant.points > 0 && s.qdrant.total > 0 && s.files.total == 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_right_wrong_and_missing_on_a_real_qdrant() {
    let real = Real::new(200, 23, Load { api_key: Some("s3cret-real".into()), ..Load::default() }).await;
    let db = real.copy_db("k.db");
    let with = |key: Option<&str>| {
        let key = key.map(str::to_string);
        real.env(&db, SourceKind::Qdrant, move |c| c.qdrant.api_key = key)
    };
    for (key, cause) in [(None, "no api key is set"), (Some("wrong"), "the api key was refused")] {
        let env = with(key);
        let err = blocking(move || companion::engine::backfill(&env, None, true)).await.expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains("401") && msg.contains(cause), "{msg}");
        // Qdrant's own words are passed on.
        assert!(msg.contains("API key"), "{msg}");
    }
    let pristine = rows(&db);
    let env = with(Some("s3cret-real"));
    let s = blocking(move || companion::engine::backfill(&env, None, false)).await.expect("with the key");
    assert!(s.tally.status(companion::assign::Status::Assigned) > 0);
    assert_ne!(rows(&db), pristine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_on_a_real_qdrant_changes_requests_never_results() {
    let real = Real::new(300, 24, Load::default()).await;
    let db = real.copy_db("clean.db");
    let (want, _, _) = runbook(|| real.env(&db, SourceKind::Qdrant, tweak(Strategy::Filtered)), &db).await;
    let path = format!("/collections/{}", real.collection);
    let strict = |cfg: serde_json::Value| real.server.call(reqwest::Method::PATCH, &path, Some(json!({ "strict_mode_config": cfg })));
    // Caps on the page and on match.any, as the server enforces them.
    strict(json!({"enabled": true, "max_query_limit": 40, "condition_max_size": 20})).await;
    let (code, body) = real.server.try_call(reqwest::Method::POST, &format!("{path}/points/scroll"), Some(json!({"limit": 41, "with_payload": false}))).await;
    assert_eq!(code, 400, "the real server enforces the cap: {body}");
    for strategy in [Strategy::Filtered, Strategy::ScrollAll] {
        let db = real.copy_db(&format!("capped-{strategy:?}.db"));
        let (got, b, _) = runbook(|| real.env(&db, SourceKind::Qdrant, tweak(strategy)), &db).await;
        assert_eq!(got, want, "{strategy:?} under caps");
        assert_eq!(b.source_stats.retries, 0, "caps read from the collection: nothing refused and retried");
    }
    // Filters on the unindexed doc_hash refused: every read becomes a scroll, same rows.
    strict(json!({"enabled": true, "unindexed_filtering_retrieve": false})).await;
    let (code, body) = real
        .server
        .try_call(reqwest::Method::POST, &format!("{path}/points/count"), Some(json!({"filter": {"must": [{"key": "doc_hash", "match": {"value": "x"}}]}})))
        .await;
    assert_eq!(code, 400, "{body}");
    let db = real.copy_db("refused.db");
    let (got, b, _) = runbook(|| real.env(&db, SourceKind::Qdrant, tweak(Strategy::Filtered)), &db).await;
    assert_eq!(got, want);
    assert_eq!(b.source_stats.strategy.as_deref(), Some("scroll_all"), "{:?}", b.source_stats);
    let settings = real.config(&db, SourceKind::Qdrant).qdrant;
    let c = blocking(move || verify_qdrant(&settings, &db, SOURCE, 10)).await;
    assert!(c.ok && c.sample_found > 0, "verify-qdrant under strict mode: {c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_qdrant_killed_mid_scroll_fails_the_run_cleanly_or_is_waited_for() {
    let mut real = Real::new(400, 25, Load::default()).await;
    let clean = real.copy_db("clean.db");
    let (want, _, _) = runbook(|| real.env(&clean, SourceKind::Qdrant, tweak(Strategy::ScrollAll)), &clean).await;
    let upstream = real.server.url().trim_start_matches("http://").to_string();
    let proxy = CountingProxy::start(upstream).await;
    let slow = |retries: u32, base_ms: u64| {
        let url = proxy.url();
        move |c: &mut Config| {
            c.qdrant.url = url.clone();
            c.qdrant.strategy = Strategy::ScrollAll;
            c.qdrant.page_size = 5; // hundreds of pages: the kill lands mid-scroll
            c.qdrant.parallel_requests = 2;
            c.qdrant.retries = retries;
            c.qdrant.retry_base_ms = base_ms;
        }
    };

    // Few quick retries: the run fails as a whole, nothing written; a rerun completes.
    let db = real.copy_db("killed.db");
    let pristine = rows(&db);
    let env = real.env(&db, SourceKind::Qdrant, slow(1, 5));
    let run = tokio::task::spawn_blocking(move || companion::engine::backfill(&env, None, false));
    proxy.wait_for("/points/scroll", 20).await;
    real.server.kill();
    let err = run.await.expect("join").expect_err("a run whose server died");
    assert!(matches!(err, Error::Qdrant { .. }), "{err}");
    assert_eq!(rows(&db), pristine, "nothing of the failed run is written");
    real.server.restart().await;
    let env = real.env(&db, SourceKind::Qdrant, slow(1, 5));
    blocking(move || companion::engine::backfill(&env, None, false).expect("rerun")).await;
    let env = real.env(&db, SourceKind::Qdrant, slow(1, 5));
    blocking(move || companion::engine::tiebreaker(&env, None, false).expect("tiebreaker")).await;
    assert_eq!(rows(&db), want, "the rerun completes with the clean rows");

    // Patient retries: the server is back before they are spent, the run succeeds unchanged.
    let db = real.copy_db("waited.db");
    let env = real.env(&db, SourceKind::Qdrant, slow(8, 200));
    let run = tokio::task::spawn_blocking(move || {
        let b = companion::engine::backfill(&env, None, false)?;
        Ok::<_, Error>((b, env))
    });
    let seen = proxy.requests("/points/scroll");
    proxy.wait_for("/points/scroll", seen + 20).await;
    real.server.restart().await;
    let (b, env) = run.await.expect("join").expect("the run waits for the restarted server");
    assert!(b.source_stats.retries > 0, "{:?}", b.source_stats);
    blocking(move || companion::engine::tiebreaker(&env, None, false).expect("tiebreaker")).await;
    assert_eq!(rows(&db), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_collection_and_a_stopped_server_are_clear_errors() {
    let mut real = Real::new(150, 26, Load::default()).await;
    let db = real.copy_db("d.db");
    let pristine = rows(&db);
    real.server.delete_collection(&real.collection).await;
    for dry in [true, false] {
        let env = real.env(&db, SourceKind::Qdrant, |_| {});
        let err = blocking(move || companion::engine::backfill(&env, None, dry)).await.expect_err("no collection");
        assert!(matches!(&err, Error::QdrantCollectionMissing { collection, .. } if collection == "recon_knowledge_hybrid"), "{err}");
    }
    let settings = real.config(&db, SourceKind::Qdrant).qdrant;
    let d2 = db.clone();
    let c = blocking(move || verify_qdrant(&settings, &d2, SOURCE, 10)).await;
    assert!(!c.ok && !c.collection_found && c.error.as_deref().is_some_and(|e| e.contains("not found")), "{c:?}");
    real.server.kill();
    let env = real.env(&db, SourceKind::Qdrant, |_| {});
    let err = blocking(move || companion::engine::backfill(&env, None, false)).await.expect_err("stopped");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    assert_eq!(rows(&db), pristine);
}

/// The service's worker on a real server: a tick assigns what RECON just
/// finished, and costs requests in proportion to the new documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_tick_on_a_real_qdrant_reads_only_the_new_documents() {
    let real = Real::new(400, 27, Load::default()).await;
    let db = real.copy_db("w.db");
    let env = real.env(&db, SourceKind::Qdrant, |_| {});
    blocking(move || companion::engine::backfill(&env, None, false).expect("backfill")).await;
    let done = rows(&db);
    for indexed in [false, true] {
        if indexed {
            real.server.index_doc_hash(&real.collection).await;
        }
        // A trickle: RECON finished 5 documents since the last tick.
        let fresh: Vec<String> =
            done.iter().filter(|r| r.2.as_deref() == Some("assigned")).skip(if indexed { 5 } else { 0 }).take(5).map(|r| r.0.clone()).collect();
        {
            let c = Connection::open(&db).expect("open");
            for h in &fresh {
                c.execute("UPDATE documents SET recon_domain = NULL, recon_domain_status = NULL WHERE hash = ?1", [h]).expect("reset");
            }
        }
        let cfg = real.config(&db, SourceKind::Qdrant);
        let env = real.env(&db, SourceKind::Qdrant, |_| {});
        let (f2, e2) = (fresh.clone(), env.clone());
        let cost = blocking(move || e2.counts(&f2, "cost").expect("counts")).await.stats;
        // One collection check, one read of its write marks (a command keeps
        // its counts) and one filtered scroll, index or not.
        assert_eq!((cost.requests, cost.strategy.as_deref()), (3, Some("filtered")), "{cost:?}");
        let tick = blocking(move || {
            let st = companion::server::state::AppState::new(cfg, env, std::sync::Arc::new(NoPush)).expect("state");
            companion::server::worker::tick(&st).expect("tick")
        })
        .await;
        assert_eq!(tick.assigned, 5, "{tick:?}");
        // The tick's own tiebreaker may settle other rows; the new ones get what the backfill gave them.
        let now = rows(&db);
        for h in &fresh {
            let (a, b) = (now.iter().find(|r| &r.0 == h), done.iter().find(|r| &r.0 == h));
            assert_eq!(a, b, "the tick wrote what the backfill had");
        }
        eprintln!("tick of 5 new documents, doc_hash indexed {indexed}: {} requests, {:.4} s of Qdrant time", cost.requests, cost.server_seconds);
    }
}

/// Counts saved by a backfill answer the separate tiebreaker run (no
/// scroll) while the real server's write marks prove the collection
/// unchanged; an in-place `set_payload` (same point count) moves the marks,
/// and the next run reads again and sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_counts_answer_the_next_run_only_while_a_real_qdrant_proves_nothing_changed() {
    let real = Real::new(300, 23, Load::default()).await;
    let on = |c: &mut Config| c.qdrant.reuse_unchanged_counts = true; // the product's default
    let off = |c: &mut Config| c.qdrant.reuse_unchanged_counts = false;
    let run = |db: &Path, tweak: fn(&mut Config), tie: bool| {
        let env = real.env(db, SourceKind::Qdrant, tweak);
        blocking(move || if tie { companion::engine::tiebreaker(&env, None, false) } else { companion::engine::backfill(&env, None, false) }.expect("pass"))
    };
    let tied = |db: &Path| -> Vec<String> {
        let c = Connection::open(db).unwrap();
        let mut q = c.prepare("SELECT hash FROM documents WHERE recon_domain_status = 'tied_pass_1' ORDER BY hash").unwrap();
        q.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    // The reference: every run reads Qdrant.
    let db0 = real.copy_db("fresh.db");
    run(&db0, off, false).await;
    run(&db0, off, true).await;

    let db1 = real.copy_db("reuse.db");
    let b = run(&db1, on, false).await;
    assert!(b.source_stats.strategy.is_some(), "nothing saved yet: the backfill reads {:?}", b.source_stats);
    let ties = tied(&db1);
    assert!(!ties.is_empty(), "the demo has ties");
    let t = run(&db1, on, true).await;
    let s = &t.source_stats;
    assert!(s.strategy.is_none() && s.requests <= 4, "per read of counts one GET of the collection and one of the telemetry, no scroll: {s:?}");
    assert!(s.saved_counts.as_deref().is_some_and(|m| m.contains("Qdrant took no write since")), "{s:?}");
    assert_eq!(rows(&db1), rows(&db0), "saved counts decide as fresh ones");

    // Another run on another copy: the saved counts answer its backfill too.
    let (db2, db3) = (real.copy_db("rewritten.db"), real.copy_db("rewritten-fresh.db"));
    let b2 = run(&db2, on, false).await;
    assert_eq!(b2.source_stats.strategy, None, "{:?}", b2.source_stats);
    run(&db3, off, false).await;
    // RECON relabels one tied video in place: the point count stays.
    let points = real.server.points_count(&real.collection).await;
    let label = shared_constants::DOMAINS[5].label;
    real.server.set_payload_of_document(&real.collection, &ties[0], json!({"domain": label})).await;
    assert_eq!(real.server.points_count(&real.collection).await, points);
    let t2 = run(&db2, on, true).await;
    let s2 = &t2.source_stats;
    assert!(s2.saved_counts.as_deref().is_some_and(|m| m.contains("not reused: Qdrant took writes since")), "{s2:?}");
    assert!(s2.strategy.is_some(), "read again: {s2:?}");
    run(&db3, off, true).await;
    assert_eq!(rows(&db2), rows(&db3), "after the rewrite, reuse on decides as reading afresh");
    let row = rows(&db2).into_iter().find(|r| r.0 == ties[0]).unwrap();
    assert_eq!((row.1.as_deref(), row.2.as_deref()), (Some(label), Some("assigned")), "the relabelled tie is now one domain's");
}
