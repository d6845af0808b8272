//! The JSON API under /api/: the dashboard's data and actions for machine
//! clients (per-caller bearer tokens) and scripts. Documented in docs/api.md.

use crate::assign::Status;
use crate::error::Error;
use crate::server::auth::Principal;
use crate::server::dashboard::ReviewQuery;
use crate::server::http_error::ApiError;
use crate::server::ops;
use crate::server::snapshot::{self, DEFAULT_PER_PAGE};
use crate::server::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

type ApiResult = Result<Json<Value>, ApiError>;

fn body<T>(r: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    r.map(|Json(v)| v).map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError(Error::TooLarge(e.body_text()))
        } else {
            ApiError(Error::BadTarget(format!("request body: {}", e.body_text())))
        }
    })
}

pub async fn stats(State(st): State<AppState>) -> ApiResult {
    let snap = st.snapshot();
    let w = st.worker_status();
    let (queued, failing) = {
        let q = st.retry.lock().unwrap_or_else(|p| p.into_inner());
        (q.len(), q.failing())
    };
    Ok(Json(json!({
        "snapshot_at": snap.built_at,
        "manual_review": snap.count(Status::TiedManual),
        "categorized": snap.status.categorized,
        "tied_pass_1": snap.count(Status::TiedPass1),
        "needs_reprocess": snap.count(Status::NeedsReprocess),
        "no_concepts": snap.count(Status::NoConcepts),
        "new_documents": snap.new_documents,
        "status": snap.status,
        "push": { "paused": st.is_paused(), "queued": queued, "failing": failing },
        "stale": st.stale_view(),
        "worker": {
            "running": w.started,
            "fresh": st.worker_fresh(),
            "last_tick_at": w.last_tick_at,
            "last_result": w.last_result,
            "last_error": w.last_error,
            "ticks": w.ticks,
            "assigned": w.assigned_total,
            "pushed": w.pushed_total,
            "push_failed": w.push_failed_total,
        },
    })))
}

pub async fn items(State(st): State<AppState>, Query(q): Query<ReviewQuery>) -> Result<axum::response::Response, ApiError> {
    let channel = q.channel.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let domain = match q.domain.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(d) => Some(ops::parse_domain(d)?.label),
        None => None,
    };
    let snap = st.snapshot();
    let (page_no, per_page) = (q.page.unwrap_or(1), q.per_page.unwrap_or(DEFAULT_PER_PAGE));
    let key = format!("api-items|{}|{}|{page_no}|{per_page}", channel.unwrap_or(""), domain.unwrap_or(""));
    let body = st.pages.get_or_insert(snap.generation, &key, || {
        let page = snapshot::select(&snap.review, channel, domain, page_no, per_page);
        serde_json::to_string(&json!({ "status": "tied_manual", "snapshot_at": snap.built_at, "page": page })).map_err(Error::from)
    })?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body.as_str().to_owned()).into_response())
}

pub async fn item(State(st): State<AppState>, Path(hash): Path<String>) -> ApiResult {
    let e = ops::explain(&st, &hash).await?;
    Ok(Json(serde_json::to_value(e).map_err(Error::from)?))
}

#[derive(Debug, Deserialize)]
pub struct AssignBody {
    domain: Value,
}

pub async fn assign(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(hash): Path<String>,
    b: Result<Json<AssignBody>, JsonRejection>,
) -> ApiResult {
    // Validate the path before the body, so a bad hash says so whatever the body.
    ops::parse_hash(&hash)?;
    let b = body(b)?;
    let domain = match &b.domain {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => return Err(ApiError(Error::BadDomain(other.to_string()))),
    };
    let a = ops::assign(&st, &hash, &domain, &p.name()).await?;
    Ok(Json(serde_json::to_value(a).map_err(Error::from)?))
}

#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    limit: Option<u64>,
}

pub async fn runs(State(st): State<AppState>, Query(q): Query<RunsQuery>) -> ApiResult {
    let runs = ops::runs(&st, q.limit.unwrap_or(50).clamp(1, 10_000)).await?;
    Ok(Json(json!({ "runs": runs })))
}

#[derive(Debug, Deserialize)]
pub struct RunQuery {
    entries: Option<usize>,
}

pub async fn run(State(st): State<AppState>, Path(id): Path<String>, Query(q): Query<RunQuery>) -> ApiResult {
    let (run, entries) = ops::run(&st, &id, q.entries.unwrap_or(1000)).await?;
    Ok(Json(json!({ "run": run, "entries": entries })))
}

#[derive(Debug, Deserialize, Default)]
pub struct RollbackBody {
    #[serde(default)]
    force: bool,
    #[serde(default)]
    dry_run: bool,
}

pub async fn rollback(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    b: Result<Json<RollbackBody>, JsonRejection>,
) -> ApiResult {
    ops::parse_run_id(&id)?;
    let b = match b {
        Err(JsonRejection::MissingJsonContentType(_)) => RollbackBody::default(),
        other => body(other)?,
    };
    let s = ops::rollback(&st, &id, b.force, b.dry_run).await?;
    if !b.dry_run {
        tracing::warn!(run = %id, by = %p.name(), "rolled back through the API");
    }
    Ok(Json(serde_json::to_value(s).map_err(Error::from)?))
}

pub async fn push_state(State(st): State<AppState>) -> ApiResult {
    let q = st.retry.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Json(json!({ "paused": st.is_paused(), "queue": q.entries })))
}

pub async fn pause(State(st): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult {
    let paused = ops::set_paused(&st, true, &p.name()).await?;
    Ok(Json(json!({ "paused": paused })))
}

pub async fn resume(State(st): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult {
    let paused = ops::set_paused(&st, false, &p.name()).await?;
    Ok(Json(json!({ "paused": paused })))
}
