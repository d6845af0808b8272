//! Liveness (/healthz), readiness (/readyz: db, migration, worker, PeerTube,
//! and Qdrant with `concept_source = "qdrant"` — each state in the body, 503
//! unless all hold; the details only for a session or a caller token) and /metrics.

use crate::config::qdrant::QdrantSettings;
use crate::recon::db as recondb;
use crate::recon::source::{verify_qdrant, ConceptSource, QdrantCheck};
use crate::server::auth;
use crate::server::state::{AppState, PEERTUBE_CHECK_EVERY};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tower_sessions::Session;

/// How long a Qdrant check answers /readyz. Probes come every few seconds and
/// each check costs Qdrant two requests (collection info, one sample scroll);
/// a quarter minute still notices a lost collection quickly.
pub const QDRANT_CHECK_TTL: Duration = Duration::from_secs(15);
/// Documents of recon.db sampled per check: enough to notice a wrong collection.
const QDRANT_SAMPLE: u64 = 3;
/// A probe must not hang for the run timeout (60 s by default).
const QDRANT_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

type CheckKey = (String, String, PathBuf);

/// Recent Qdrant checks, per (url, collection, recon.db), process-wide: the
/// state owns no slot for it and several services (tests) may share a process.
/// The lock is held during a check, so concurrent probes wait for one check
/// instead of each asking Qdrant.
static QDRANT_CHECKS: Mutex<Option<HashMap<CheckKey, (Instant, QdrantCheck)>>> = Mutex::new(None);

/// The Qdrant check, at most [`QDRANT_CHECK_TTL`] old.
pub fn qdrant_check_cached(settings: &QdrantSettings, recon_db: &Path, peertube_source: &str) -> QdrantCheck {
    let key = (settings.url.clone(), settings.collection.clone(), recon_db.to_path_buf());
    let mut guard = QDRANT_CHECKS.lock().unwrap_or_else(|p| p.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some((at, c)) = map.get(&key) {
        if at.elapsed() < QDRANT_CHECK_TTL {
            return c.clone();
        }
    }
    // No retries and a short timeout: a probe reports the state now, the next
    // probe after the TTL asks again.
    let s = QdrantSettings { timeout: settings.timeout.min(QDRANT_CHECK_TIMEOUT), retries: 0, ..settings.clone() };
    let c = verify_qdrant(&s, recon_db, peertube_source, QDRANT_SAMPLE);
    map.insert(key, (Instant::now(), c.clone()));
    c
}

/// The operator's one line about a Qdrant check.
fn qdrant_detail(c: &QdrantCheck) -> String {
    let mut d = format!("collection {:?} at {}", c.collection, c.url);
    if c.collection_found {
        let points = c.points_count.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        let index = if c.doc_hash_indexed { "doc_hash indexed" } else { "doc_hash not indexed" };
        d.push_str(&format!(
            ": {}, {points} points, {index}, {} of {} sampled documents found",
            c.status.as_deref().unwrap_or("unknown"),
            c.sample_found,
            c.sampled
        ));
    } else {
        d.push_str(": not found");
    }
    if let Some(e) = &c.error {
        d.push_str(&format!("; {e}"));
    }
    d
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "alive" }))
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

fn check(ok: bool, detail: impl Into<String>) -> Check {
    Check { ok, detail: detail.into() }
}

/// The readiness checks, each with a plain explanation.
pub fn readiness(st: &AppState) -> Vec<(&'static str, Check)> {
    let (db, migration) = match st.pool.get() {
        Err(e) => (check(false, format!("cannot open {}: {e}", st.env.recon_db.display())), check(false, "db unreachable")),
        Ok(conn) => match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)) {
            Err(e) => (check(false, format!("query failed: {e}")), check(false, "db unreachable")),
            Ok(_) => {
                let db = check(true, st.env.recon_db.display().to_string());
                let mig = match recondb::migration_state(&conn) {
                    Ok(m) if m.ok() => check(true, "feature columns, index and companion tables present"),
                    Ok(m) => check(false, format!("not migrated: {}", serde_json::to_string(&m).unwrap_or_default())),
                    Err(e) => check(false, e.to_string()),
                };
                (db, mig)
            }
        },
    };
    let w = st.worker_status();
    let worker = if st.worker_fresh() {
        check(true, format!("last tick {} ({})", w.last_tick_at.unwrap_or_default(), w.last_result.unwrap_or_default()))
    } else if !w.started {
        check(false, "worker not running")
    } else {
        let age = w.last_tick.map(|t| format!("{} s ago", t.elapsed().as_secs())).unwrap_or_else(|| "never".into());
        check(false, format!("stale: last tick {age}; last error: {}", w.last_error.unwrap_or_else(|| "none".into())))
    };
    let p = st.peertube_check();
    let peertube = match p.at {
        None => check(false, "not checked yet"),
        Some(at) if at.elapsed() > PEERTUBE_CHECK_EVERY * 3 => check(false, format!("last check too old ({}): {}", p.checked_at.unwrap_or_default(), p.detail)),
        Some(_) => check(p.ok, format!("{} (checked {})", p.detail, p.checked_at.unwrap_or_default())),
    };
    let mut checks = vec![("db", db), ("migration", migration), ("worker", worker), ("peertube", peertube)];
    if let ConceptSource::Qdrant { settings, .. } = &st.env.concepts {
        let c = qdrant_check_cached(settings, &st.env.recon_db, &st.env.source);
        checks.push(("qdrant", check(c.ok, qdrant_detail(&c))));
    }
    checks
}

/// Anyone gets ready/not ready per component; the details (paths, URLs,
/// upstream errors) only a logged-in operator or a configured caller.
pub async fn readyz(State(st): State<AppState>, headers: HeaderMap, session: Session) -> Response {
    let detailed = auth::identify(&st, &headers, Some(&session)).await.is_some();
    let checks = st.blocking(|st| Ok(readiness(&st))).await.unwrap_or_default();
    let ready = !checks.is_empty() && checks.iter().all(|(_, c)| c.ok);
    let mut body = serde_json::Map::new();
    body.insert("ready".into(), json!(ready));
    for (name, c) in checks {
        body.insert(name.into(), if detailed { json!(c) } else { json!({ "ok": c.ok }) });
    }
    if detailed {
        body.insert("push_paused".into(), json!(st.is_paused()));
    }
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(serde_json::Value::Object(body))).into_response()
}

pub async fn metrics(State(st): State<AppState>) -> Response {
    let w = st.worker_status();
    // Never ticked: report the time since start as unknown (-1) rather than 0 ("fresh").
    let age = w.last_tick.map(|t| t.elapsed().as_secs_f64()).unwrap_or(-1.0);
    st.metrics.worker_last_tick_age.set(age);
    st.metrics.push_paused.set(i64::from(st.is_paused()));
    let _ = st.snapshot();
    st.update_gauges();
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], st.metrics.encode()).into_response()
}
