//! The HTML dashboard: login, review queue, video detail, runs and rollback,
//! people's overrides (handed back from here), the kill switch. Handlers translate HTTP into `ops` calls and templates.

use crate::assign::Status;
use crate::error::Error;
use crate::server::auth::{self, Principal, SessionAuth};
use crate::server::http_error::PageError;
use crate::server::ops;
use crate::server::render_cache::{fill, CSRF_PLACEHOLDER, WORKER_PLACEHOLDER};
use crate::server::snapshot::{self, DEFAULT_PER_PAGE};
use crate::server::state::AppState;
use crate::server::views;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use tower_sessions::{Expiry, Session};

type PageResult = Result<Response, PageError>;

const FLASH_KEY: &str = "flash";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flash {
    pub kind: String,
    pub text: String,
}

async fn push_flash(session: &Session, kind: &str, text: String) {
    let mut v: Vec<Flash> = session.get(FLASH_KEY).await.ok().flatten().unwrap_or_default();
    v.push(Flash { kind: kind.into(), text });
    let _ = session.insert(FLASH_KEY, v).await;
}

/// Messages for this page view, removed from the session. Only a session that
/// holds some is modified (a removal always marks it, i.e. a store write and a cookie).
async fn take_flash(session: &Session) -> Vec<Flash> {
    if session.get_value(FLASH_KEY).await.ok().flatten().is_none() {
        return Vec::new();
    }
    session.remove::<Vec<Flash>>(FLASH_KEY).await.ok().flatten().unwrap_or_default()
}

fn tpl(v: serde_json::Value) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(&v))
}

fn render(st: &AppState, name: &str, ctx: minijinja::Value) -> PageResult {
    Ok(Html(views::render(&st.templates, name, ctx)?).into_response())
}

/// A form that could not be read: 413 when too large, else 400.
fn form_error(e: FormRejection) -> PageError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        PageError(Error::TooLarge(e.body_text()))
    } else {
        PageError(Error::BadTarget(format!("form: {}", e.body_text())))
    }
}

fn none_if_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub async fn root() -> Redirect {
    Redirect::to("/peertube/review")
}

// ---------------------------------------------------------------- login

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_page(st: &AppState, next: &str, message: Option<&str>, status: StatusCode) -> PageResult {
    let token = auth::random_token();
    let html = views::render(
        &st.templates,
        "login.html",
        tpl(json!({ "login_csrf": token, "next": next, "message": message, "flash": Vec::<Flash>::new(), "principal": () })),
    )?;
    let mut resp = (status, Html(html)).into_response();
    if let Ok(v) = auth::login_csrf_cookie(&token, st.cfg.server.cookie_secure).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub async fn login_form(State(st): State<AppState>, session: Session, Query(q): Query<NextQuery>) -> PageResult {
    let next = auth::safe_next(q.next.as_deref());
    if session.get::<SessionAuth>(auth::SESSION_KEY).await.ok().flatten().is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    login_page(&st, &next, None, StatusCode::OK)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

fn peer_ip(ci: Option<&axum::extract::ConnectInfo<SocketAddr>>) -> Option<IpAddr> {
    ci.map(|c| c.0.ip())
}

fn throttled(st: &AppState, next: &str, msg: &str, status: StatusCode, wait: std::time::Duration) -> PageResult {
    let mut r = login_page(st, next, Some(msg), status)?;
    if let Ok(v) = wait.as_secs().max(1).to_string().parse() {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Ok(r)
}

pub async fn login(
    State(st): State<AppState>,
    session: Session,
    headers: HeaderMap,
    ci: Option<Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    Form(f): Form<LoginForm>,
) -> PageResult {
    let next = auth::safe_next(f.next.as_deref());
    let cookie = auth::cookie_value(&headers, auth::LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie.is_empty() || !auth::ct_eq_str(cookie, &f.csrf) {
        return login_page(&st, &next, Some("The login form expired (missing or wrong CSRF token): try again."), StatusCode::FORBIDDEN);
    }
    let ip = auth::client_ip(peer_ip(ci.as_ref().map(|e| &e.0)), &headers, &st.trusted_proxies);
    let Some(phc) = st.cfg.server.password_hash.clone() else {
        return login_page(
            &st,
            &next,
            Some("Login is disabled: server.password_hash is not set (make one with `recon-companion hash-password`)."),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    };
    // Counted before the check: parallel guesses from one address get only as
    // many argon2 runs as the limit allows.
    if let Err(wait) = st.limiter.try_attempt(ip, Instant::now()) {
        let msg = format!("Too many failed logins from {ip}: wait {} s.", wait.as_secs());
        return throttled(&st, &next, &msg, StatusCode::TOO_MANY_REQUESTS, wait);
    }
    // Service-wide, few checks run at once; a flood waits briefly, then is refused.
    let Some(slot) = st.limiter.verification_slot(auth::VERIFY_QUEUE_WAIT).await else {
        tracing::warn!(%ip, "login refused: password checks saturated");
        return throttled(
            &st,
            &next,
            "The server is busy checking other logins: try again in a few seconds.",
            StatusCode::SERVICE_UNAVAILABLE,
            auth::VERIFY_QUEUE_WAIT,
        );
    };
    let password = f.password;
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&phc, &password)).await.unwrap_or(false);
    drop(slot);
    if !ok {
        tracing::warn!(%ip, "failed login");
        return login_page(&st, &next, Some("Wrong password."), StatusCode::UNAUTHORIZED);
    }
    st.limiter.succeeded(ip);
    // A new session id at login: a planted cookie never becomes a logged-in session.
    session.cycle_id().await.map_err(|e| PageError(Error::Other(format!("session: {e}"))))?;
    let auth = SessionAuth { user: "operator".into(), csrf: auth::random_token() };
    session.insert(auth::SESSION_KEY, auth).await.map_err(|e| PageError(Error::Other(format!("session: {e}"))))?;
    let ttl = tower_sessions::cookie::time::Duration::seconds(st.cfg.server.session_ttl_secs.min(i64::MAX as u64) as i64);
    session.set_expiry(Some(Expiry::AtDateTime(tower_sessions::cookie::time::OffsetDateTime::now_utc() + ttl)));
    tracing::info!(%ip, "operator logged in");
    Ok(Redirect::to(&next).into_response())
}

/// Deletes the session row (not just the cookie): a copied cookie is dead too.
pub async fn logout(session: Session) -> PageResult {
    session.flush().await.map_err(|e| PageError(Error::Other(format!("session: {e}"))))?;
    Ok(Redirect::to("/login").into_response())
}

// ---------------------------------------------------------------- review

#[derive(Debug, Deserialize, Default)]
pub struct ReviewQuery {
    pub channel: Option<String>,
    pub domain: Option<String>,
    pub page: Option<usize>,
    pub per_page: Option<usize>,
}

fn review_url(channel: Option<&str>, domain: Option<&str>, page: usize, per_page: usize) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if let Some(c) = channel {
        s.append_pair("channel", c);
    }
    if let Some(d) = domain {
        s.append_pair("domain", d);
    }
    s.append_pair("page", &page.to_string());
    s.append_pair("per_page", &per_page.to_string());
    format!("/peertube/review?{}", s.finish())
}

pub async fn review(State(st): State<AppState>, Extension(p): Extension<Principal>, session: Session, Query(q): Query<ReviewQuery>) -> PageResult {
    let channel = none_if_empty(&q.channel);
    let domain = match none_if_empty(&q.domain) {
        Some(d) => Some(ops::parse_domain(d)?.label),
        None => None,
    };
    let snap = st.snapshot();
    let per_page = q.per_page.unwrap_or(DEFAULT_PER_PAGE);
    let paused = st.is_paused();
    let flash = take_flash(&session).await;
    let w = st.worker_status();
    let worker = match (&w.last_tick_at, &w.last_result) {
        (Some(at), Some(r)) => format!("last tick {at} ({r})"),
        _ if w.started => "starting".into(),
        _ => "not running".into(),
    };
    let stale = st.stale_view();
    let worker = format!("{worker}; stale assignments: {} (fix with assign-categories --reassess)", stale.stale);
    let worker = crate::server::http_error::escape_html(&worker);
    let query = format!("{}|{}|{}|{per_page}", channel.unwrap_or(""), domain.unwrap_or(""), q.page.unwrap_or(1));
    // The body is the same for every session: rendered once per snapshot and query.
    let body = st.pages.get_or_insert(snap.generation, &format!("review-body|{query}"), || {
        let page = snapshot::select(&snap.review, channel, domain, q.page.unwrap_or(1), per_page);
        let ctx = tpl(json!({
            "csrf": CSRF_PLACEHOLDER,
            "cards": {
                "manual_review": snap.count(Status::TiedManual),
                "categorized": snap.status.categorized,
                "tied_pass_1": snap.count(Status::TiedPass1),
                "needs_reprocess": snap.count(Status::NeedsReprocess),
                "no_concepts": snap.count(Status::NoConcepts),
                "unpushed": snap.status.unpushed,
                "new_documents": snap.new_documents,
            },
            "chart": views::chart(&snap.status.by_domain),
            "channels": &snap.review_channels,
            "domains": views::domain_options(),
            "filter": { "channel": channel.unwrap_or(""), "domain": domain.unwrap_or("") },
            "prev_url": review_url(channel, domain, page.page.saturating_sub(1).max(1), page.per_page),
            "next_url": review_url(channel, domain, page.page + 1, page.per_page),
            "back": review_url(channel, domain, page.page, page.per_page),
            "page": &page,
        }));
        views::render(&st.templates, "review_body.html", ctx)
    })?;
    let page = |flash: &[Flash]| {
        let ctx = tpl(json!({
            "principal": "operator",
            "csrf": CSRF_PLACEHOLDER,
            "paused": paused,
            "flash": flash,
            "built_at": &snap.built_at,
            "worker": WORKER_PLACEHOLDER,
        }));
        let ctx = minijinja::context! { body => minijinja::Value::from_safe_string(body.as_str().to_owned()), ..ctx };
        views::render(&st.templates, "review.html", ctx)
    };
    // Without messages the whole page is shared too; the session's token and the
    // worker's line are filled in per request.
    let html = if flash.is_empty() {
        st.pages.get_or_insert(snap.generation, &format!("review-page|{paused}|{query}"), || page(&[]))?
    } else {
        std::sync::Arc::new(page(&flash)?)
    };
    Ok(Html(fill(&html, &[(CSRF_PLACEHOLDER, p.csrf()), (WORKER_PLACEHOLDER, &worker)])).into_response())
}

/// The review page posts all its rows' selects (`d-HASH`) with the clicked row's
/// URL; the detail page posts `domain`.
pub async fn assign(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    session: Session,
    Path(hash): Path<String>,
    f: Result<Form<std::collections::HashMap<String, String>>, FormRejection>,
) -> PageResult {
    // The path first: a hostile hash is a 400 whatever the body is.
    ops::parse_hash(&hash)?;
    let Form(f) = f.map_err(form_error)?;
    let domain = f.get(&format!("d-{hash}")).or_else(|| f.get("domain")).cloned().unwrap_or_default();
    let back = f.get("back").cloned();
    let a = ops::assign(&st, &hash, &domain, &p.name()).await?;
    // A hash may be shorter than 12 characters (any safe component is one).
    let short = a.hash.get(..12).unwrap_or(&a.hash);
    match a.push.state {
        "pushed" => push_flash(&session, "notice", format!("{short}…: {} assigned and pushed to PeerTube (category {}).", a.domain, a.category_id)).await,
        "paused" => push_flash(&session, "warning", format!("{short}…: {} assigned; pushes are paused, it will be pushed when they resume.", a.domain)).await,
        _ => {
            push_flash(
                &session,
                "warning",
                format!(
                    "{short}…: {} assigned, but the push to PeerTube failed ({}); it stays pending and will be retried.",
                    a.domain,
                    a.push.message.as_deref().unwrap_or("unknown error")
                ),
            )
            .await
        }
    }
    let back = auth::safe_next(back.as_deref());
    Ok(Redirect::to(&back).into_response())
}

pub async fn item(State(st): State<AppState>, Extension(p): Extension<Principal>, session: Session, Path(hash): Path<String>) -> PageResult {
    let e = ops::explain(&st, &hash).await?;
    let video_url = snapshot::video_url(&st.cfg.server.public_url, e.video_url.as_deref());
    let ctx = tpl(json!({
        "principal": p.name(), "csrf": p.csrf(), "paused": st.is_paused(), "flash": take_flash(&session).await,
        "e": &e, "video_url": video_url, "domains": views::domain_options(),
    }));
    render(&st, "item.html", ctx)
}

// ---------------------------------------------------------------- runs

#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    limit: Option<u64>,
}

pub async fn runs(State(st): State<AppState>, Extension(p): Extension<Principal>, session: Session, Query(q): Query<RunsQuery>) -> PageResult {
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let mut runs = ops::runs(&st, limit + 1).await?;
    let more = runs.len() as u64 > limit;
    runs.truncate(limit as usize);
    let ctx = tpl(
        json!({ "principal": p.name(), "csrf": p.csrf(), "paused": st.is_paused(), "flash": take_flash(&session).await, "runs": runs, "more": more, "limit": limit }),
    );
    render(&st, "runs.html", ctx)
}

pub async fn run(State(st): State<AppState>, Extension(p): Extension<Principal>, session: Session, Path(id): Path<String>) -> PageResult {
    let (run, entries) = ops::run(&st, &id, 200).await?;
    let ctx =
        tpl(json!({ "principal": p.name(), "csrf": p.csrf(), "paused": st.is_paused(), "flash": take_flash(&session).await, "run": run, "entries": entries }));
    render(&st, "run.html", ctx)
}

/// The confirmation page: a dry run of the rollback.
pub async fn rollback_confirm(State(st): State<AppState>, Extension(p): Extension<Principal>, session: Session, Path(id): Path<String>) -> PageResult {
    let (run, _) = ops::run(&st, &id, 0).await?;
    // Forced dry run: shows every row, conflicts included, instead of refusing.
    let summary = ops::rollback(&st, &id, true, true).await?;
    let ctx = tpl(
        json!({ "principal": p.name(), "csrf": p.csrf(), "paused": st.is_paused(), "flash": take_flash(&session).await, "run": run, "summary": summary, "done": false }),
    );
    render(&st, "rollback.html", ctx)
}

#[derive(Debug, Deserialize)]
pub struct RollbackForm {
    confirm: Option<String>,
    force: Option<String>,
}

pub async fn rollback(
    State(st): State<AppState>,
    Extension(p): Extension<Principal>,
    session: Session,
    Path(id): Path<String>,
    f: Result<Form<RollbackForm>, FormRejection>,
) -> PageResult {
    // The path first: a hostile id is a 400 whatever the form says.
    ops::parse_run_id(&id)?;
    let Form(f) = f.map_err(form_error)?;
    if f.confirm.as_deref() != Some("yes") {
        return Err(PageError(Error::Refused("a rollback needs the confirmation from its confirmation page".into())));
    }
    let summary = ops::rollback(&st, &id, f.force.as_deref() == Some("yes"), false).await?;
    tracing::warn!(run = %id, by = %p.name(), rollback_run = ?summary.run_id, "rolled back from the dashboard");
    let (run, _) = ops::run(&st, &id, 0).await?;
    let ctx = tpl(
        json!({ "principal": p.name(), "csrf": p.csrf(), "paused": st.is_paused(), "flash": take_flash(&session).await, "run": run, "summary": summary, "done": true }),
    );
    render(&st, "rollback.html", ctx)
}

// ---------------------------------------------------------------- overrides

/// Videos people overrode in PeerTube, each with a button handing it back to the machine.
pub async fn overrides(State(st): State<AppState>, Extension(p): Extension<Principal>, session: Session) -> PageResult {
    let rows = ops::overrides(&st).await?;
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|o| {
            let label = o
                .category
                .map(|c| {
                    u16::try_from(c).ok().and_then(shared_constants::by_id).map(|d| d.label.to_string()).unwrap_or_else(|| format!("PeerTube category {c}"))
                })
                .unwrap_or_else(|| "none (cleared)".into());
            json!({ "o": o, "label": label })
        })
        .collect();
    let ctx = tpl(json!({ "principal": p.name(), "csrf": p.csrf(), "paused": st.is_paused(), "flash": take_flash(&session).await, "rows": rows }));
    render(&st, "overrides.html", ctx)
}

pub async fn hand_back(State(st): State<AppState>, Extension(p): Extension<Principal>, session: Session, Path(hash): Path<String>) -> PageResult {
    let h = ops::hand_back(&st, &hash, &p.name()).await?;
    let short = h.hash.get(..12).unwrap_or(&h.hash);
    push_flash(
        &session,
        "notice",
        format!(
            "{short}…: handed back to the machine{} (run {}); it is recomputed and pushed on the worker's next tick.",
            if h.override_removed { ", override removed" } else { "" },
            h.run_id
        ),
    )
    .await;
    Ok(Redirect::to("/peertube/overrides").into_response())
}

// ---------------------------------------------------------------- kill switch

pub async fn pause(State(st): State<AppState>, Extension(p): Extension<Principal>, session: Session, headers: HeaderMap) -> PageResult {
    ops::set_paused(&st, true, &p.name()).await?;
    push_flash(&session, "warning", "All pushes paused: assignment goes on; nothing is sent to PeerTube until you resume.".into()).await;
    Ok(Redirect::to(&back_to(&headers)).into_response())
}

pub async fn resume(State(st): State<AppState>, Extension(p): Extension<Principal>, session: Session, headers: HeaderMap) -> PageResult {
    ops::set_paused(&st, false, &p.name()).await?;
    push_flash(&session, "notice", "Pushes resumed.".into()).await;
    Ok(Redirect::to(&back_to(&headers)).into_response())
}

/// Back to the page the form was on (same origin only), else the review page.
fn back_to(headers: &HeaderMap) -> String {
    let referer = headers.get(header::REFERER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let path = ["http://", "https://"].iter().find_map(|scheme| referer.strip_prefix(scheme).and_then(|r| r.strip_prefix(host)).filter(|_| !host.is_empty()));
    auth::safe_next(path)
}
