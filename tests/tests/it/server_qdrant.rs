//! The service with the Qdrant concept source: /readyz checks the collection
//! (details only for an authenticated caller), and `no_concepts` documents show
//! in /api/stats, on the dashboard and in /metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use crate::server_support;

use axum::body::Body;
use axum::http::StatusCode;
use companion::config::SourceKind;
use companion::recon::source::ConceptSource;
use server_support::*;
use testkit::qdrant::{QdrantStandIn, StandInConfig};

/// A service state reading concepts from `qdrant` (collection `collection`).
fn qdrant_state(d: &Data, qdrant: &QdrantStandIn, collection: &str) -> companion::server::state::AppState {
    let mut cfg = d.config();
    cfg.concept_source = SourceKind::Qdrant;
    cfg.qdrant.url = qdrant.url();
    cfg.qdrant.collection = collection.to_string();
    cfg.qdrant.retry_base_ms = 5;
    let mut env = d.env();
    env.concepts = ConceptSource::Qdrant { settings: cfg.qdrant.clone(), memo: None };
    let st = companion::server::state::AppState::new(cfg, env, FakePusher::new(&d.db)).expect("state");
    st.snapshot.rebuild(&st.env, &st.cfg.server.public_url).expect("snapshot");
    st
}

/// Points for every document of `d`, so the readiness sample finds them.
fn load_points(d: &Data, q: &QdrantStandIn) {
    for (i, h) in d.tied.iter().chain(&d.assigned).enumerate() {
        q.add_point(i as u64 + 1, serde_json::json!({"doc_hash": h, "domain": label(4)}));
    }
}

/// Makes the other components ready, so `ready` hangs on Qdrant alone.
fn tick(st: &companion::server::state::AppState) {
    companion::server::worker::tick(st).expect("tick");
    st.worker.lock().expect("lock").last_tick = Some(std::time::Instant::now());
    companion::server::worker::check_peertube_now(st);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_checks_the_qdrant_collection() {
    let d = data(2, 2);
    let q = QdrantStandIn::start(StandInConfig::default()).await;
    load_points(&d, &q);
    let st = qdrant_state(&d, &q, q.collection());
    tick(&st);
    let mut c = Client::new(&st);
    let r = c.get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    // Anonymous: ok/not-ok only, no URL or collection name.
    assert_eq!(j["qdrant"], serde_json::json!({"ok": true}), "{j}");
    assert!(!r.body.contains(&q.url()), "{}", r.body);

    // Cached: a burst of probes costs Qdrant one check (info + one sample scroll).
    let before = q.stats().requests;
    for _ in 0..5 {
        assert_eq!(c.get("/readyz").await.status, StatusCode::OK);
    }
    assert_eq!(q.stats().requests, before, "probes within the TTL must not reach Qdrant");

    // A caller token sees the details.
    let r = c.send(caller(c.req("GET", "/readyz"), CALLER, CALLER_TOKEN).body(Body::empty()).expect("req")).await;
    let j = r.json();
    let detail = j["qdrant"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(q.collection()) && detail.contains("sampled documents found"), "{j}");

    // The collection is missing (another state: its own cache entry): not ready.
    let st = qdrant_state(&d, &q, "gone");
    tick(&st);
    let mut c = Client::new(&st);
    let r = c.get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    let j = r.json();
    assert_eq!((j["ready"].clone(), j["qdrant"].clone()), (serde_json::json!(false), serde_json::json!({"ok": false})), "{j}");
    assert_eq!(j["db"]["ok"], true, "only Qdrant fails: {j}");
    let r = c.send(caller(c.req("GET", "/readyz"), CALLER, CALLER_TOKEN).body(Body::empty()).expect("req")).await;
    let detail = r.json()["qdrant"]["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("not found"), "{detail}");
}

#[tokio::test]
async fn files_source_has_no_qdrant_check() {
    let d = data(1, 1);
    let st = state(&d, d.config(), FakePusher::new(&d.db));
    let j = Client::new(&st).get("/readyz").await.json();
    assert!(j.get("qdrant").is_none(), "{j}");
}

#[tokio::test]
async fn no_concepts_shows_in_stats_dashboard_and_metrics() {
    let d = data(1, 1);
    {
        let conn = d.conn();
        for i in 0..3 {
            let h = hash_of(0xcccc_0000, i);
            insert_doc(&conn, &h, &format!("Empty video {i}"), "Gamma", "complete", None, Some("no_concepts"), "2026-01-03T00:00:00");
        }
    }
    let st = state(&d, d.config(), FakePusher::new(&d.db));
    let mut c = Client::new(&st);
    let r = c.send(caller(c.req("GET", "/api/stats"), CALLER, CALLER_TOKEN).body(Body::empty()).expect("req")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let j = r.json();
    assert_eq!(j["no_concepts"], 3, "{j}");
    assert_eq!(j["status"]["by_status"]["no_concepts"], 3, "{j}");
    // Terminal but not a category: it does not count as categorized.
    assert_eq!(j["categorized"], 1, "{j}");

    c.login(PASSWORD).await;
    let page = c.get("/peertube/review").await;
    assert!(page.body.contains("id=\"card-no-concepts\">3<"), "dashboard card: {}", page.body);
    let m = c.get("/metrics").await;
    assert!(m.body.contains(r#"recon_companion_documents{status="no_concepts"} 3"#), "{}", m.body);
}
