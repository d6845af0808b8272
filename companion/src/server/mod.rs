//! The service (`recon-companion serve`): background worker, review dashboard,
//! JSON API, health and metrics, behind password sessions and caller tokens;
//! plus the kill-switch and password-hash commands.

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod health;
pub mod http_error;
pub mod metrics;
pub mod ops;
pub mod pause;
pub mod push_queue;
pub mod queries;
pub mod render_cache;
pub mod session_store;
pub mod snapshot;
pub mod state;
pub mod views;
pub mod worker;

use crate::config::ServerConfig;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::recon::db as recondb;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::SessionManagerLayer;

/// Session cookie name.
pub const SESSION_COOKIE: &str = "recon_session";

/// Records every routed request's latency under its route template.
async fn track_latency(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    st.metrics.observe_request(&method, &route, resp.status().as_u16(), started.elapsed().as_secs_f64());
    resp
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, readiness, the login form).
    Public,
    /// A session (with CSRF on state changes) or a caller token.
    Protected,
}

/// One route of the service: the router is built from [`ROUTES`], so tests that
/// walk this list walk every route there is.
pub struct RouteSpec {
    pub path: &'static str,
    /// The methods it answers (besides HEAD for GET).
    pub methods: &'static [&'static str],
    pub access: Access,
    handler: fn() -> MethodRouter<AppState>,
}

impl RouteSpec {
    /// True when a method changes state (and so needs CSRF with a session).
    pub fn state_changing(method: &str) -> bool {
        !matches!(method, "GET" | "HEAD" | "OPTIONS")
    }
}

use Access::{Protected, Public};

/// Every route. /healthz, /readyz and the login form are open; everything else
/// needs a session (with CSRF on state changes) or a caller token.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec { path: "/healthz", methods: &["GET"], access: Public, handler: || get(health::healthz) },
    RouteSpec { path: "/readyz", methods: &["GET"], access: Public, handler: || get(health::readyz) },
    RouteSpec { path: "/login", methods: &["GET", "POST"], access: Public, handler: || get(dashboard::login_form).post(dashboard::login) },
    RouteSpec { path: "/", methods: &["GET"], access: Protected, handler: || get(dashboard::root) },
    RouteSpec { path: "/peertube/review", methods: &["GET"], access: Protected, handler: || get(dashboard::review) },
    RouteSpec { path: "/peertube/review/{hash}/assign", methods: &["POST"], access: Protected, handler: || post(dashboard::assign) },
    RouteSpec { path: "/peertube/item/{hash}", methods: &["GET"], access: Protected, handler: || get(dashboard::item) },
    RouteSpec { path: "/runs", methods: &["GET"], access: Protected, handler: || get(dashboard::runs) },
    RouteSpec { path: "/runs/{id}", methods: &["GET"], access: Protected, handler: || get(dashboard::run) },
    RouteSpec {
        path: "/runs/{id}/rollback",
        methods: &["GET", "POST"],
        access: Protected,
        handler: || get(dashboard::rollback_confirm).post(dashboard::rollback),
    },
    RouteSpec { path: "/push/pause", methods: &["POST"], access: Protected, handler: || post(dashboard::pause) },
    RouteSpec { path: "/push/resume", methods: &["POST"], access: Protected, handler: || post(dashboard::resume) },
    RouteSpec { path: "/logout", methods: &["POST"], access: Protected, handler: || post(dashboard::logout) },
    RouteSpec { path: "/metrics", methods: &["GET"], access: Protected, handler: || get(health::metrics) },
    RouteSpec { path: "/api/stats", methods: &["GET"], access: Protected, handler: || get(api::stats) },
    RouteSpec { path: "/api/items", methods: &["GET"], access: Protected, handler: || get(api::items) },
    RouteSpec { path: "/api/items/{hash}", methods: &["GET"], access: Protected, handler: || get(api::item) },
    RouteSpec { path: "/api/items/{hash}/assign", methods: &["POST"], access: Protected, handler: || post(api::assign) },
    RouteSpec { path: "/api/runs", methods: &["GET"], access: Protected, handler: || get(api::runs) },
    RouteSpec { path: "/api/runs/{id}", methods: &["GET"], access: Protected, handler: || get(api::run) },
    RouteSpec { path: "/api/runs/{id}/rollback", methods: &["POST"], access: Protected, handler: || post(api::rollback) },
    RouteSpec { path: "/api/push", methods: &["GET"], access: Protected, handler: || get(api::push_state) },
    RouteSpec { path: "/api/push/pause", methods: &["POST"], access: Protected, handler: || post(api::pause) },
    RouteSpec { path: "/api/push/resume", methods: &["POST"], access: Protected, handler: || post(api::resume) },
];

/// Every route, behind the session layer and the security layers ([`harden`]).
pub fn router(st: AppState) -> Router {
    let mut public = Router::new();
    let mut protected = Router::new();
    for r in ROUTES {
        match r.access {
            Public => public = public.route(r.path, (r.handler)()),
            Protected => protected = protected.route(r.path, (r.handler)()),
        }
    }
    let protected = protected.route_layer(middleware::from_fn_with_state(st.clone(), auth::require_auth));
    let sessions = SessionManagerLayer::new(st.sessions.clone())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(st.cfg.server.cookie_secure)
        .with_path("/");
    let app = Router::new().merge(public).merge(protected).route_layer(middleware::from_fn_with_state(st.clone(), track_latency)).layer(sessions);
    harden(app.with_state(st.clone()), &st.cfg.server)
}

/// A handler's panic as a logged 500 page instead of a dropped connection.
fn panic_page(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err.downcast_ref::<String>().map(String::as_str).or_else(|| err.downcast_ref::<&str>().copied()).unwrap_or("unknown panic");
    tracing::error!(panic = msg, "a request handler panicked");
    http_error::PageError(Error::Other("internal error: the request failed; details are in the service log".into())).into_response()
}

fn static_header(v: &'static str) -> HeaderValue {
    HeaderValue::from_static(v)
}

/// The security layers every response passes: headers (CSP, no framing, no
/// sniffing, same-origin referrers, no caching), body limit, timeout, and
/// panics caught. Outermost last: the headers also land on 408, 413 and panic pages.
pub fn harden(app: Router, sv: &ServerConfig) -> Router {
    let csp = HeaderValue::from_str(&views::content_security_policy()).unwrap_or_else(|_| static_header("default-src 'none'; frame-ancestors 'none'"));
    app.layer(RequestBodyLimitLayer::new(usize::try_from(sv.max_body_bytes).unwrap_or(usize::MAX)))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(sv.request_timeout_secs.max(1))))
        .layer(CatchPanicLayer::custom(panic_page))
        // A route may set its own CSP; the others get the strict one.
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, csp))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, static_header("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, static_header("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, static_header("same-origin")))
        // Pages carry CSRF tokens and review data: never kept by a browser or proxy.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, static_header("no-store")))
}

/// Applies the migration at start-up when it is missing (RECON may have done it).
fn migrate_at_start(ctx: &Context) -> Result<()> {
    let mut conn = recondb::open(&ctx.env.recon_db)?;
    if recondb::migration_state(&conn)?.ok() {
        return Ok(());
    }
    match crate::journal::lock::WriterLock::acquire(&ctx.env.recon_db, "recon-companion serve (migration)") {
        Ok(_lock) => {
            let applied = recondb::ensure_migrated(&mut conn)?;
            tracing::warn!(?applied, "applied the migration at start-up");
            Ok(())
        }
        Err(Error::Locked(who)) => {
            tracing::warn!(holder = %who, "migration pending: the writer lock is held; the worker retries");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// `recon-companion serve`.
pub fn serve(ctx: &Context, bind: Option<String>) -> Result<i32> {
    let bind = bind.unwrap_or_else(|| ctx.cfg.server.bind.clone());
    let addr: SocketAddr = bind.parse().map_err(|e| Error::Config(format!("--bind {bind:?}: {e} (expected IP:PORT)")))?;
    if ctx.cfg.server.password_hash.is_none() {
        eprintln!("warning: server.password_hash is not set: nobody can log in to the dashboard (make one with `recon-companion hash-password`)");
    }
    migrate_at_start(ctx)?;
    let mut env = ctx.env.clone();
    env.progress = false;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_name("recon-serve")
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("tokio runtime: {e}")))?;
    let pusher = Arc::new(push_queue::PeerTubePusher::new(ctx.cfg.clone(), env.clone(), rt.handle().clone()));
    let st = AppState::new(ctx.cfg.clone(), env, pusher)?;
    if let Err(e) = st.snapshot.rebuild(&st.env, &st.cfg.server.public_url) {
        tracing::warn!(error = %e, "first snapshot failed; the dashboard retries");
    }
    st.update_gauges();
    let worker = worker::spawn(st.clone())?;
    let app = router(st.clone());
    let res: Result<()> = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| Error::io(bind.clone(), e))?;
        let local = listener.local_addr().map_err(|e| Error::io(bind.clone(), e))?;
        eprintln!("recon-companion serve: listening on http://{local} (recon db {})", ctx.env.recon_db.display());
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| Error::Other(format!("server: {e}")))
    });
    worker.stop();
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    res?;
    eprintln!("recon-companion serve: stopped");
    Ok(0)
}
