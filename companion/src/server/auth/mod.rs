//! Authentication: the operator's password (argon2 PHC from the config) behind a
//! session cookie with a CSRF token bound to the session, a limit on failed
//! logins per client address, and per-caller bearer tokens for machine clients
//! (`X-Caller-Service: NAME` + `Authorization: Bearer TOKEN`, checked against
//! the SHA-256 in `[server.callers.NAME]` in constant time).

mod limiter;
mod password;
mod redirect;

pub use limiter::{client_ip, LoginLimiter, VERIFY_QUEUE_WAIT};
pub use password::{hash_password, hash_password_cheap, verify_password};
pub use redirect::{is_safe_redirect, safe_next, safe_redirect, DEFAULT_PAGE};

use crate::config::CallerConfig;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use super::state::AppState;

pub const CALLER_HEADER: &str = "x-caller-service";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const CSRF_FIELD: &str = "csrf";
/// Session key holding [`SessionAuth`].
pub const SESSION_KEY: &str = "auth";
/// Cookie of the login form's double-submit token (there is no session yet).
pub const LOGIN_CSRF_COOKIE: &str = "recon_login_csrf";
/// Largest form body the CSRF check buffers.
const FORM_LIMIT: usize = 64 * 1024;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A person logged in with the password; carries the session's CSRF token.
    Operator { csrf: String },
    /// A machine client named in `[server.callers]`.
    Caller(String),
}

impl Principal {
    pub fn name(&self) -> String {
        match self {
            Principal::Operator { .. } => "operator".into(),
            Principal::Caller(n) => format!("caller:{n}"),
        }
    }
    pub fn csrf(&self) -> &str {
        match self {
            Principal::Operator { csrf } => csrf,
            Principal::Caller(_) => "",
        }
    }
}

/// What a logged-in session holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionAuth {
    pub user: String,
    pub csrf: String,
}

/// 32 random bytes as hex: session CSRF tokens and the login form's token.
pub fn random_token() -> String {
    hex::encode(rand::thread_rng().gen::<[u8; 32]>())
}

pub fn ct_eq_str(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A machine client's credentials: the caller must be configured and the
/// token's SHA-256 must equal the stored one (compared in constant time).
pub fn caller_ok(callers: &BTreeMap<String, CallerConfig>, name: &str, token: &str) -> bool {
    let digest = Sha256::digest(token.as_bytes());
    let Some(c) = callers.get(name) else { return false };
    let Ok(expected) = hex::decode(c.token_sha256.trim()) else { return false };
    expected.len() == digest.len() && bool::from(digest.as_slice().ct_eq(&expected))
}

/// The bearer token of an `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/api" || path == "/metrics"
}

fn unauthorized(path: &str, query: Option<&str>, msg: &str) -> Response {
    if is_api(path) {
        let mut r = (StatusCode::UNAUTHORIZED, axum::Json(serde_json::json!({ "error": msg }))).into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        r
    } else {
        let target = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        let enc: String = form_urlencoded::byte_serialize(target.as_bytes()).collect();
        Redirect::to(&format!("/login?next={enc}")).into_response()
    }
}

fn forbidden(path: &str, msg: &str) -> Response {
    if is_api(path) {
        (StatusCode::FORBIDDEN, axum::Json(serde_json::json!({ "error": msg }))).into_response()
    } else {
        (
            StatusCode::FORBIDDEN,
            axum::response::Html(format!(
                "<!doctype html><title>Forbidden</title><h1>403 Forbidden</h1><p>{msg}</p><p><a href=\"/peertube/review\">Back to the review page</a></p>"
            )),
        )
            .into_response()
    }
}

fn state_changing(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_form(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The CSRF token a request carries: the header, else the form field (the body
/// is buffered and handed on unchanged).
async fn request_csrf(req: Request<Body>) -> std::result::Result<(Option<String>, Request<Body>), Response> {
    if let Some(v) = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        let v = v.to_string();
        return Ok((Some(v), req));
    }
    if !is_form(req.headers()) {
        return Ok((None, req));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    let token = form_urlencoded::parse(&bytes).find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.into_owned());
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// The caller named by `X-Caller-Service`, if it also sent its right token:
/// `None` without the header, `Some(Err(name))` for wrong credentials.
fn caller_of(st: &AppState, headers: &HeaderMap) -> Option<std::result::Result<String, String>> {
    let name = headers.get(CALLER_HEADER)?;
    let name = name.to_str().unwrap_or("").trim().to_string();
    let ok = bearer(headers).is_some_and(|t| caller_ok(&st.cfg.server.callers, &name, t));
    Some(if ok { Ok(name) } else { Err(name) })
}

/// Who made a request, without refusing anyone (for routes that answer the
/// public too, such as /readyz, but tell an authenticated caller more).
pub async fn identify(st: &AppState, headers: &HeaderMap, session: Option<&Session>) -> Option<Principal> {
    match caller_of(st, headers) {
        Some(Ok(name)) => return Some(Principal::Caller(name)),
        Some(Err(_)) => return None,
        None => {}
    }
    let auth: SessionAuth = session?.get(SESSION_KEY).await.ok().flatten()?;
    Some(Principal::Operator { csrf: auth.csrf })
}

/// Middleware on every route but /healthz, /readyz and the login form.
pub async fn require_auth(axum::extract::State(st): axum::extract::State<AppState>, req: Request<Body>, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    match caller_of(&st, req.headers()) {
        Some(Ok(name)) => {
            let mut req = req;
            req.extensions_mut().insert(Principal::Caller(name));
            return next.run(req).await;
        }
        Some(Err(name)) => {
            tracing::warn!(caller = %name, path, "refused caller credentials");
            return unauthorized("/api/", None, "unknown caller or wrong token");
        }
        None => {}
    }
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return unauthorized(&path, query.as_deref(), "login required");
    };
    let auth: Option<SessionAuth> = session.get(SESSION_KEY).await.ok().flatten();
    let Some(auth) = auth else {
        return unauthorized(&path, query.as_deref(), "login required (session cookie or X-Caller-Service + bearer token)");
    };
    let mut req = req;
    if state_changing(req.method()) {
        let (token, r) = match request_csrf(req).await {
            Ok(x) => x,
            Err(resp) => return resp,
        };
        req = r;
        if !token.is_some_and(|t| ct_eq_str(&t, &auth.csrf)) {
            tracing::warn!(path, "refused state-changing request without a valid CSRF token");
            return forbidden(&path, "missing or wrong CSRF token: reload the page and try again");
        }
    }
    req.extensions_mut().insert(Principal::Operator { csrf: auth.csrf });
    next.run(req).await
}

/// Reads one cookie from the request headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The Set-Cookie value for the login form's token.
pub fn login_csrf_cookie(token: &str, secure: bool) -> String {
    tower_sessions::cookie::Cookie::build((LOGIN_CSRF_COOKIE, token.to_string()))
        .path("/login")
        .http_only(true)
        .same_site(tower_sessions::cookie::SameSite::Strict)
        .secure(secure)
        .max_age(tower_sessions::cookie::time::Duration::minutes(30))
        .build()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_token_checked_against_its_own_hash() {
        let mut callers = BTreeMap::new();
        callers.insert("recon".to_string(), CallerConfig { token_sha256: hex::encode(Sha256::digest(b"s3cret")) });
        callers.insert("admin".to_string(), CallerConfig { token_sha256: hex::encode(Sha256::digest(b"other")) });
        assert!(caller_ok(&callers, "recon", "s3cret"));
        assert!(!caller_ok(&callers, "recon", "s3cre"));
        assert!(!caller_ok(&callers, "admin", "s3cret"), "a token is bound to its caller");
        assert!(!caller_ok(&callers, "nobody", "s3cret"));
        callers.insert("broken".to_string(), CallerConfig { token_sha256: "zz".into() });
        assert!(!caller_ok(&callers, "broken", ""));
    }

    #[test]
    fn bearer_header_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }
    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; recon_login_csrf=tok; b=2".parse().unwrap());
        assert_eq!(cookie_value(&h, LOGIN_CSRF_COOKIE), Some("tok"));
        assert_eq!(cookie_value(&h, "c"), None);
        let c = login_csrf_cookie("tok", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"), "{c}");
    }
}
