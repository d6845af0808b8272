//! `explain` with both sources configured: the files' and Qdrant's counts side
//! by side, and each source's pass-1 outcome.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use crate::server_support;

use companion::assign::Status;
use companion::explain::{explain, render_text};
use companion::recon::source::ConceptSource;
use server_support::*;
use testkit::qdrant::{QdrantStandIn, StandInConfig};

fn qdrant_env(d: &Data, q: &QdrantStandIn) -> companion::context::Env {
    let mut cfg = d.config();
    cfg.qdrant.url = q.url();
    cfg.qdrant.collection = q.collection().to_string();
    cfg.qdrant.retry_base_ms = 5;
    let mut env = d.env();
    env.concepts = ConceptSource::Qdrant { settings: cfg.qdrant, memo: None };
    env.second_source = Some(ConceptSource::Files);
    env
}

/// The files source with a `[qdrant]` section as `Env::from_config` builds it.
fn files_env_with_qdrant(d: &Data, q: &QdrantStandIn) -> companion::context::Env {
    let mut env = qdrant_env(d, q);
    env.second_source = Some(std::mem::replace(&mut env.concepts, ConceptSource::Files));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_files_and_qdrant_side_by_side() {
    // tied[0]'s files: domains 0 and 1 with 3 each, domain 5 with 1 (a tie).
    let d = data(1, 0);
    let h = d.tied[0].clone();
    let q = QdrantStandIn::start(StandInConfig::default()).await;
    // Qdrant disagrees: domain 0 has one more concept, domain 5 none (a clear winner).
    let mut id = 0;
    for (dom, n) in [(0, 4), (1, 3)] {
        for _ in 0..n {
            id += 1;
            q.add_point(id, serde_json::json!({"doc_hash": h, "domain": label(dom)}));
        }
    }
    let env = qdrant_env(&d, &q);
    let (db, h2) = (d.db.clone(), h.clone());
    let e = tokio::task::spawn_blocking(move || {
        let conn = companion::recon::db::open_readonly(&db).expect("open");
        explain(&env, &conn, &h2).expect("explain")
    })
    .await
    .expect("join");
    let c = e.sources.as_ref().expect("both sources are configured");
    assert_eq!(c.configured, "qdrant");
    let rows: Vec<(&str, u64, u64)> = c.rows.iter().map(|r| (r.domain, r.files, r.qdrant)).collect();
    assert_eq!(rows, vec![(label(0), 3, 4), (label(1), 3, 3), (label(5), 1, 0)]);
    assert!(!c.counts_agree && !c.pass1_agrees);
    assert_eq!((c.files.pass1.status, c.files.total, c.files.found), (Status::TiedPass1, 7, true));
    assert_eq!((c.qdrant.pass1.status, c.qdrant.pass1.domain, c.qdrant.points, c.qdrant.total), (Status::Assigned, Some(label(0)), 7, 7));
    // The explanation itself follows the configured source (Qdrant).
    assert_eq!((e.pass1.status, e.pass1.domain), (Status::Assigned, Some(label(0))));
    let text = render_text(&e);
    assert!(text.contains("Sources (configured: qdrant)"), "{text}");
    assert!(text.contains("pass 1 on files") && text.contains("tied_pass_1 (7 valid label(s); concept dir found)"), "{text}");
    assert!(text.contains(&format!("assigned / {} (7 valid label(s); 7 point(s))", label(0))), "{text}");
    assert!(text.contains("disagree on the pass-1 outcome"), "{text}");
    let json = serde_json::to_value(&e).expect("json");
    assert_eq!(json["sources"]["rows"][0]["qdrant"], 4, "{json}");

    // The files source with [qdrant] configured: the same comparison, the
    // explanation now following the files (a tie).
    let (db, h2, fq) = (d.db.clone(), h.clone(), files_env_with_qdrant(&d, &q));
    let f = tokio::task::spawn_blocking(move || {
        let conn = companion::recon::db::open_readonly(&db).expect("open");
        explain(&fq, &conn, &h2).expect("explain")
    })
    .await
    .expect("join");
    let fc = f.sources.as_ref().expect("files + [qdrant]: both sources shown");
    assert_eq!(fc.configured, "files");
    assert_eq!(fc.rows.iter().map(|r| (r.domain, r.files, r.qdrant)).collect::<Vec<_>>(), rows);
    assert_eq!((fc.files.pass1.status, fc.qdrant.pass1.status), (Status::TiedPass1, Status::Assigned));
    assert_eq!(f.pass1.status, Status::TiedPass1, "the explanation follows the configured source");
    assert!(render_text(&f).contains("Sources (configured: files)"));

    // Files source only, or no concepts dir: no comparison.
    let (db, h2, files_env) = (d.db.clone(), h.clone(), d.env());
    let mut no_dir = qdrant_env(&d, &q);
    no_dir.concepts_dir = d.dir.path().join("absent");
    let (a, b) = tokio::task::spawn_blocking(move || {
        let conn = companion::recon::db::open_readonly(&db).expect("open");
        (explain(&files_env, &conn, &h2).expect("files"), explain(&no_dir, &conn, &h2).expect("no dir"))
    })
    .await
    .expect("join");
    assert!(a.sources.is_none() && b.sources.is_none());
    assert!(serde_json::to_value(&a).expect("json").get("sources").is_none(), "the JSON stays as it was");
}
