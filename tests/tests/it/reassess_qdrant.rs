//! `--reassess` and the stale count on the Qdrant source: payloads rewritten in place (the stand-in, and RECON-style `set_payload` on a real Qdrant server); saved counts answer only when opted in, and say how old they are.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use crate::reassess::{complete_videos, decided, other_label, stale_round, MACHINE, SOURCE};
use crate::server_support;
use companion::config::{Config, SourceKind};
use companion::context::Env;
use companion::demo::{self, DemoSpec};
use companion::engine::reassess::reassess;
use companion::server::{stale, state::AppState};
use rusqlite::Connection;

// ---- Qdrant: payloads rewritten in place (RECON's `set_payload`) ----

mod standin {
    use super::*;
    use testkit::qdrant::StandInConfig as QConfig;
    use testkit::qdrant_world::QdrantWorld;

    async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        tokio::task::spawn_blocking(f).await.expect("join")
    }

    /// The demo's points: (id, payload) by document.
    pub fn points_by_doc(jsonl: &Path) -> BTreeMap<String, Vec<(u64, serde_json::Value)>> {
        let mut out: BTreeMap<String, Vec<(u64, serde_json::Value)>> = BTreeMap::new();
        for line in std::fs::read_to_string(jsonl).unwrap().lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let h = v["payload"]["doc_hash"].as_str().unwrap().to_string();
            out.entry(h).or_default().push((v["id"].as_u64().unwrap(), v["payload"].clone()));
        }
        out
    }

    /// RECON's Qdrant rules on today's points (Python reference) on a cleared copy.
    pub fn python_qdrant_oracle(db: &Path, url: &str, scratch: &Path) -> BTreeMap<String, (String, Option<String>)> {
        let copy = scratch.join("qoracle.db");
        let c = Connection::open(db).unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
        drop(c);
        std::fs::copy(db, &copy).unwrap();
        Connection::open(&copy)
            .unwrap()
            .execute(
                &format!(
                    "UPDATE documents SET recon_domain = NULL, recon_domain_status = NULL, recon_domain_assigned_at = NULL, peertube_category_pushed_at = NULL
                     WHERE recon_domain_status IN {MACHINE}"
                ),
                [],
            )
            .unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/recon_qdrant_reference.py");
        for pass in ["backfill", "tiebreaker"] {
            let out = Command::new("python3").arg(&script).args(["--db", &copy.display().to_string(), "--url", url, pass]).output().expect("python3");
            assert!(out.status.success(), "reference {pass}: {}", String::from_utf8_lossy(&out.stderr));
        }
        decided(&copy)
    }

    /// Relabels every point of `docs` (the k-th to another domain than its stored one).
    pub fn relabel(docs: &[(String, Option<String>)], points: &BTreeMap<String, Vec<(u64, serde_json::Value)>>, mut set: impl FnMut(u64, serde_json::Value)) {
        for (k, (h, cur)) in docs.iter().enumerate() {
            let label = other_label(cur.as_deref(), k);
            for (id, p) in &points[h] {
                let mut p = p.clone();
                p["domain"] = label.into();
                set(*id, p);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn payloads_rewritten_in_place_are_reassessed_and_counted_stale_with_two_requests_a_tick() {
        let w = QdrantWorld::new(600, 21, QConfig::default()).await;
        let db = w.copy_db("q.db");
        // One environment per command, as separate processes have (an
        // environment's in-process memo lives as long as its process).
        let fresh = || w.env(&db, SourceKind::Qdrant, |_| {});
        let env = fresh();
        let e = fresh();
        blocking(move || {
            companion::engine::backfill(&e, None, false).unwrap();
            companion::engine::tiebreaker(&e, None, false).unwrap();
        })
        .await;
        let before = decided(&db);
        let cfg = w.config(&db, SourceKind::Qdrant);
        let st = AppState::new(cfg, env.clone(), server_support::FakePusher::new(&db)).unwrap();
        // Nothing changed: a check costs a collection request and one scroll.
        let (st2, n) = (st.clone(), before.len());
        let quiet = blocking(move || stale_round(&st2, n)).await;
        assert_eq!(quiet.stale, 0, "{quiet:?}");
        w.qdrant.reset_stats();
        let st2 = st.clone();
        let one = blocking(move || stale::check(&st2)).await;
        let requests = w.qdrant.stats().requests;
        println!("stale check with nothing changed: {:?}; Qdrant requests {requests}", one.last_cost);
        assert!(requests <= 3 && requests == one.last_cost.qdrant_requests, "{requests} requests: {one:?}");
        assert_eq!(one.last_cost.concept_files_read, 0);

        // RECON relabels the points of 30 assigned documents in place: the point count stays.
        let points = points_by_doc(&w.data().join(demo::qdrant::POINTS_FILE));
        let chosen: Vec<(String, Option<String>)> =
            before.iter().filter(|(h, (s, _))| s == "assigned" && points.contains_key(*h)).take(30).map(|(h, (_, d))| (h.clone(), d.clone())).collect();
        relabel(&chosen, &points, |id, p| w.qdrant.add_point(id, p));
        let (st2, n) = (st.clone(), before.len());
        let seen = blocking(move || stale_round(&st2, n)).await;
        assert_eq!(seen.by_recheck, 30, "{seen:?}");

        let url = w.qdrant.url();
        let (d2, scratch) = (db.clone(), w.dir.path().to_path_buf());
        let oracle = blocking(move || python_qdrant_oracle(&d2, &url, &scratch)).await;
        let expected: BTreeSet<String> = before.iter().filter(|(h, v)| oracle.get(*h).is_some_and(|o| o != *v)).map(|(h, _)| h.clone()).collect();
        let e = fresh();
        let dry = blocking(move || reassess(&e, None, true).unwrap()).await;
        let named: BTreeSet<String> = dry.items.iter().map(|i| i.hash.clone()).collect();
        assert_eq!(named, expected, "dry run vs RECON's Qdrant rules");
        assert!(expected.len() >= 30);
        let e = fresh();
        let real = blocking(move || reassess(&e, None, false).unwrap()).await;
        assert_eq!(real.pass.written as usize, expected.len());
        for (h, v) in decided(&db) {
            if before.contains_key(&h) {
                assert_eq!(Some(&v), oracle.get(&h), "{h}");
            }
        }
        let (st2, n) = (st.clone(), before.len());
        assert_eq!(blocking(move || stale_round(&st2, n)).await.stale, 0);
    }

    /// Saved counts answer the next run while the stand-in's write marks
    /// (Qdrant's operation numbers) hold; an in-place relabel moves them, so
    /// the next run reads again, opted-in age or not, and every reuse says
    /// how old its counts are.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_run_reuses_counts_only_while_the_write_marks_hold_and_says_how_old_they_are() {
        let w = QdrantWorld::new(400, 5, QConfig::default()).await;
        let db = w.copy_db("s.db");
        let shipped = |c: &mut Config| c.qdrant.reuse_unchanged_counts = Config::default().qdrant.reuse_unchanged_counts;
        let aged = |c: &mut Config| c.qdrant.reuse_counts_secs = 900;
        let dry = |tweak: fn(&mut Config)| {
            let e = w.env(&db, SourceKind::Qdrant, tweak);
            blocking(move || companion::engine::backfill(&e, None, true).unwrap())
        };
        let d0 = dry(shipped).await;
        assert_eq!(d0.source_stats.memo_hits, 0, "nothing saved yet");
        let again = dry(shipped).await;
        assert_eq!((again.source_stats.memo_hits, again.source_stats.strategy.as_deref()), (again.selected, None), "{:?}", again.source_stats);
        assert!(again.source_stats.saved_counts.as_deref().unwrap_or("").contains("Qdrant took no write since"), "{:?}", again.source_stats);
        assert_eq!(again.tally.by_domain, d0.tally.by_domain);

        let points = points_by_doc(&w.data().join(demo::qdrant::POINTS_FILE));
        let winners: Vec<(String, Option<String>)> = complete_videos(&db).into_iter().filter(|h| points.contains_key(h)).take(40).map(|h| (h, None)).collect();
        assert_eq!(winners.len(), 40);
        relabel(&winners, &points, |id, p| w.qdrant.add_point(id, p));
        // Opted into an unproven reuse of 900 s: the marks moved, so it reads again.
        let d1 = dry(aged).await;
        assert_ne!(d1.tally.by_domain, d0.tally.by_domain, "the next run reads again and sees the relabelled points");
        assert_eq!(d1.source_stats.memo_hits, 0);
        assert!(d1.source_stats.saved_counts.as_deref().unwrap_or("").contains("not reused: Qdrant took writes since"), "{:?}", d1.source_stats);
        // Nothing changed since: reused, and --json says how old they are.
        let r1 = dry(shipped).await;
        assert_eq!(r1.tally.by_domain, d1.tally.by_domain);
        let json = serde_json::to_value(&r1).unwrap();
        let age = json["source_stats"]["saved_counts_age_secs"].as_u64();
        assert!(age.is_some_and(|a| a < 600), "…and says how old they are in --json: {json}");
        assert!(json["source_stats"]["saved_counts"].as_str().unwrap_or("").contains("s ago"), "{json}");
    }
}

// ---- The real Qdrant server: no stale answers ----

mod real_qdrant {
    use super::standin::{points_by_doc, python_qdrant_oracle};
    use super::*;
    use testkit::qdrant_server::QdrantServer;

    const COLLECTION: &str = "recon_knowledge_hybrid";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn set_payload_in_place_is_seen_by_the_next_backfill_and_reassess_dry_runs() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let d = data.clone();
        tokio::task::spawn_blocking(move || {
            demo::generate(&d, &DemoSpec { seed: 17, ..DemoSpec::demo(400) }).unwrap();
            demo::qdrant::write_points(&d, SOURCE).unwrap();
        })
        .await
        .unwrap();
        let q = QdrantServer::start().await;
        q.create_collection(COLLECTION).await;
        q.index_doc_hash(COLLECTION).await;
        q.load_jsonl(COLLECTION, data.join(demo::qdrant::POINTS_FILE)).await;
        let points_before = q.points_count(COLLECTION).await;
        let mut cfg = Config {
            recon_db: data.join("recon.db"),
            concepts_dir: data.join("concepts"),
            reports_dir: dir.path().join("reports"),
            concept_source: SourceKind::Qdrant,
            ..Config::default()
        };
        cfg.qdrant.url = q.url();
        cfg.qdrant.collection = COLLECTION.into();
        assert_eq!(cfg.qdrant.reuse_counts_secs, 0, "the default reads again");
        let env = || {
            let mut e = Env::from_config(&cfg);
            e.progress = false;
            e
        };
        let run = |e: Env, f: fn(&Env) -> serde_json::Value| tokio::task::spawn_blocking(move || f(&e));
        let dry_backfill: fn(&Env) -> serde_json::Value = |e| serde_json::to_value(companion::engine::backfill(e, None, true).unwrap()).unwrap();
        let first = run(env(), dry_backfill).await.unwrap();

        // RECON relabels every point of 40 documents in place (`set_payload`).
        let points = points_by_doc(&data.join(demo::qdrant::POINTS_FILE));
        let relabelled: Vec<String> = complete_videos(&cfg.recon_db).into_iter().filter(|h| points.contains_key(h)).take(40).collect();
        assert_eq!(relabelled.len(), 40);
        for (k, h) in relabelled.iter().enumerate() {
            q.set_payload_of_document(COLLECTION, h, serde_json::json!({ "domain": other_label(None, k) })).await;
        }
        assert_eq!(q.points_count(COLLECTION).await, points_before, "an in-place rewrite keeps the point count");
        let second = run(env(), dry_backfill).await.unwrap();
        assert_ne!(second["tally"]["by_domain"], first["tally"]["by_domain"], "the next dry run sees the new labels");
        assert_eq!(second["source_stats"]["memo_hits"], 0, "{}", second["source_stats"]);

        // Assigned, then relabelled again: the reassessment's dry run names exactly what RECON's rules now change.
        let e = env();
        tokio::task::spawn_blocking(move || {
            companion::engine::backfill(&e, None, false).unwrap();
            companion::engine::tiebreaker(&e, None, false).unwrap();
        })
        .await
        .unwrap();
        let db = cfg.recon_db.clone();
        let before = decided(&db);
        let chosen: Vec<&String> = before.iter().filter(|(h, (s, _))| s == "assigned" && points.contains_key(*h)).map(|(h, _)| h).skip(40).take(30).collect();
        for (k, h) in chosen.iter().enumerate() {
            q.set_payload_of_document(COLLECTION, h, serde_json::json!({ "domain": other_label(before[*h].1.as_deref(), k) })).await;
        }
        let (d2, url, scratch) = (db.clone(), q.url(), dir.path().to_path_buf());
        let oracle = tokio::task::spawn_blocking(move || python_qdrant_oracle(&d2, &url, &scratch)).await.unwrap();
        let expected: BTreeSet<String> = before.iter().filter(|(h, v)| oracle.get(*h).is_some_and(|o| o != *v)).map(|(h, _)| h.clone()).collect();
        assert!(expected.len() >= 30, "{}", expected.len());
        let e = env();
        let dry = tokio::task::spawn_blocking(move || reassess(&e, None, true).unwrap()).await.unwrap();
        let named: BTreeSet<String> = dry.items.iter().map(|i| i.hash.clone()).collect();
        assert_eq!(named, expected, "reassess dry run vs RECON's Qdrant rules on the real server");

        // The service's stale check on the real server, through a proxy that
        // counts what reaches the server: a bounded handful of requests a tick.
        let proxy = testkit::qdrant_real_world::CountingProxy::start(q.url().trim_start_matches("http://").to_string()).await;
        let mut scfg = cfg.clone();
        scfg.qdrant.url = proxy.url();
        let mut senv = Env::from_config(&scfg);
        senv.progress = false;
        let st = AppState::new(scfg, senv, server_support::FakePusher::new(&db)).unwrap();
        let st2 = st.clone();
        let v = tokio::task::spawn_blocking(move || stale::check(&st2)).await.unwrap();
        let served = proxy.requests("");
        println!("stale check on the real Qdrant: {:?}; requests that reached the server: {served}", v.last_cost);
        assert_eq!(v.last_error, None);
        assert!(v.last_cost.qdrant_requests <= 3 && served as u64 == v.last_cost.qdrant_requests, "{served}: {v:?}");
    }
}
