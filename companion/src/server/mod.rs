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
pub mod snapshot;
pub mod state;
pub mod views;
pub mod worker;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::recon::db as recondb;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use state::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tower_sessions::cookie::SameSite;
use tower_sessions::{MemoryStore, SessionManagerLayer};

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

/// Every route. /healthz, /readyz and the login form are open; everything else
/// needs a session (with CSRF on state changes) or a caller token.
pub fn router(st: AppState) -> Router {
    let protected = Router::new()
        .route("/", get(dashboard::root))
        .route("/peertube/review", get(dashboard::review))
        .route("/peertube/review/{hash}/assign", post(dashboard::assign))
        .route("/peertube/item/{hash}", get(dashboard::item))
        .route("/runs", get(dashboard::runs))
        .route("/runs/{id}", get(dashboard::run))
        .route("/runs/{id}/rollback", get(dashboard::rollback_confirm).post(dashboard::rollback))
        .route("/push/pause", post(dashboard::pause))
        .route("/push/resume", post(dashboard::resume))
        .route("/logout", post(dashboard::logout))
        .route("/metrics", get(health::metrics))
        .route("/api/stats", get(api::stats))
        .route("/api/items", get(api::items))
        .route("/api/items/{hash}", get(api::item))
        .route("/api/items/{hash}/assign", post(api::assign))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run))
        .route("/api/runs/{id}/rollback", post(api::rollback))
        .route("/api/push", get(api::push_state))
        .route("/api/push/pause", post(api::pause))
        .route("/api/push/resume", post(api::resume))
        .route_layer(middleware::from_fn_with_state(st.clone(), auth::require_auth));
    let public = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/login", get(dashboard::login_form).post(dashboard::login));
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(st.cfg.server.cookie_secure)
        .with_path("/");
    Router::new().merge(public).merge(protected).route_layer(middleware::from_fn_with_state(st.clone(), track_latency)).layer(sessions).with_state(st)
}

/// Applies the migration at start-up when it is missing (RECON may have done it).
fn migrate_at_start(ctx: &Context) -> Result<()> {
    let mut conn = recondb::open(&ctx.env.recon_db)?;
    if recondb::migration_state(&conn)?.ok() {
        return Ok(());
    }
    match crate::engine::lock::WriterLock::acquire(&ctx.env.recon_db, "recon-companion serve (migration)") {
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
