//! Liveness (/healthz), readiness (/readyz: db, migration, worker, PeerTube —
//! each state in the body, 503 unless all hold; the details only for a session
//! or a caller token) and /metrics.

use crate::recon::db as recondb;
use crate::server::auth;
use crate::server::state::{AppState, PEERTUBE_CHECK_EVERY};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use tower_sessions::Session;

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
    vec![("db", db), ("migration", migration), ("worker", worker), ("peertube", peertube)]
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
