//! Authentication: the operator's password (argon2 PHC from the config) behind a
//! session cookie with a CSRF token bound to the session, a limit on failed
//! logins per client address, and per-caller bearer tokens for machine clients
//! (`X-Caller-Service: NAME` + `Authorization: Bearer TOKEN`, checked against
//! the SHA-256 in `[server.callers.NAME]` in constant time).

use crate::config::CallerConfig;
use crate::error::{Error, Result};
use argon2::password_hash::PasswordVerifier;
use argon2::Argon2;
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
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

/// Checks a password against an argon2 PHC string (its own parameters apply).
pub fn verify_password(phc: &str, password: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// An argon2id PHC string with the library's recommended parameters and a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    use argon2::password_hash::PasswordHasher;
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|e| Error::Other(format!("argon2: {e}")))
}

/// A PHC string with cheap parameters, for tests only (debug builds make the
/// recommended ones take seconds).
pub fn hash_password_cheap(password: &str) -> Result<String> {
    use argon2::password_hash::PasswordHasher;
    let params = argon2::Params::new(8, 1, 1, None).map_err(|e| Error::Other(format!("argon2: {e}")))?;
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Other(format!("argon2: {e}")))
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

/// Failed logins per client address: after `max` attempts that did not succeed
/// within `window`, the address is refused (without checking the password) until
/// the oldest expires. An attempt counts *before* its password check, so a burst
/// of parallel guesses from one address gets `max` checks, not one per request.
/// IPv6 addresses count per /64 (one host usually holds a whole /64).
pub struct LoginLimiter {
    max: usize,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    /// Service-wide cap on argon2 verifications running at once (each takes
    /// ~19 MiB and a core for a moment): a flood from many addresses queues here.
    verifications: tokio::sync::Semaphore,
}

/// How long a login waits for a free verification slot before it is refused.
pub const VERIFY_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// The key an address is counted under.
fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl LoginLimiter {
    pub fn new(max: usize, window: Duration) -> LoginLimiter {
        LoginLimiter::with_concurrency(max, window, 2)
    }

    pub fn with_concurrency(max: usize, window: Duration, concurrent: usize) -> LoginLimiter {
        LoginLimiter { max: max.max(1), window, failures: Mutex::new(HashMap::new()), verifications: tokio::sync::Semaphore::new(concurrent.max(1)) }
    }

    fn wait_of(&self, q: &mut VecDeque<Instant>, now: Instant) -> Option<Duration> {
        while q.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            q.pop_front();
        }
        if q.len() >= self.max {
            let oldest = *q.front()?;
            return Some(self.window.saturating_sub(now.duration_since(oldest)).max(Duration::from_secs(1)));
        }
        None
    }

    /// `Some(wait)` when the address must wait before trying again.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let q = map.get_mut(&limit_key(ip))?;
        self.wait_of(q, now)
    }

    /// Checks and counts one attempt at once (no gap for a parallel burst to
    /// slip through): `Err(wait)` when the address is over its limit.
    pub fn try_attempt(&self, ip: IpAddr, now: Instant) -> std::result::Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::forget_expired(&mut map, self.window, now);
        let q = map.entry(limit_key(ip)).or_default();
        if let Some(wait) = self.wait_of(q, now) {
            return Err(wait);
        }
        q.push_back(now);
        Ok(())
    }

    fn forget_expired(map: &mut HashMap<IpAddr, VecDeque<Instant>>, window: Duration, now: Instant) {
        // Forget addresses whose failures all expired, so the map stays small.
        if map.len() > 10_000 {
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
    }

    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::forget_expired(&mut map, self.window, now);
        map.entry(limit_key(ip)).or_default().push_back(now);
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&limit_key(ip));
    }

    /// A verification slot, waiting at most `wait`; `None` when the service is
    /// saturated (the caller answers 503 instead of queueing without bound).
    pub async fn verification_slot(&self, wait: Duration) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(wait, self.verifications.acquire()).await.ok()?.ok()
    }
}

/// An address or a CIDR network of `server.trusted_proxies`.
pub fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy
/// (entries further left are whatever the client chose to send).
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = peer.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim).collect();
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => continue,
            Ok(ip) => return ip,
            // A garbled entry: nothing left of it can be believed.
            Err(_) => return peer,
        }
    }
    peer
}

/// The default page after login and after a form.
pub const DEFAULT_PAGE: &str = "/peertube/review";
/// Longest redirect target kept (a longer one falls back to the default).
const MAX_REDIRECT: usize = 2048;

/// True for a same-site absolute path a `Location` header may carry: starts
/// with one `/` (never `//` or `/\`, which browsers read as another host), and
/// holds only printable ASCII without backslashes (browsers drop tabs and
/// newlines, so `/<TAB>/evil` would become `//evil`; control characters cannot
/// be in a header at all).
pub fn is_safe_redirect(target: &str) -> bool {
    let b = target.as_bytes();
    !b.is_empty() && b.len() <= MAX_REDIRECT && b[0] == b'/' && !matches!(b.get(1), Some(b'/' | b'\\')) && b.iter().all(|c| c.is_ascii_graphic() && *c != b'\\')
}

/// A redirect target (`next`, `back`, …) if it is safe, else `default`.
pub fn safe_redirect(target: Option<&str>, default: &str) -> String {
    match target {
        Some(t) if is_safe_redirect(t) => t.to_string(),
        _ => default.to_string(),
    }
}

/// A local path to go back to after login; anything else becomes the review page.
pub fn safe_next(next: Option<&str>) -> String {
    safe_redirect(next, DEFAULT_PAGE)
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
    fn password_round_trip() {
        let phc = hash_password_cheap("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&phc, "correct horse"));
        assert!(!verify_password(&phc, "correct horsE"));
        assert!(!verify_password("not a phc", "x"));
    }

    #[test]
    fn limiter_blocks_after_max_failures_in_window() {
        let l = LoginLimiter::new(5, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(l.blocked(ip, t0 + Duration::from_secs(i)).is_none());
            l.failed(ip, t0 + Duration::from_secs(i));
        }
        let wait = l.blocked(ip, t0 + Duration::from_secs(10)).expect("blocked");
        assert_eq!(wait, Duration::from_secs(50));
        assert!(l.blocked(other, t0 + Duration::from_secs(10)).is_none(), "per address");
        assert!(l.blocked(ip, t0 + Duration::from_secs(61)).is_none(), "the oldest failure expired");
        l.succeeded(ip);
        assert!(l.blocked(ip, t0 + Duration::from_secs(11)).is_none());
    }

    #[test]
    fn next_must_be_local() {
        assert_eq!(safe_next(Some("/runs?x=1")), "/runs?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/peertube/review");
        assert_eq!(safe_next(Some("https://evil.example/")), "/peertube/review");
        assert_eq!(safe_next(Some("/\\evil")), "/peertube/review");
        assert_eq!(safe_next(None), "/peertube/review");
        // Browsers drop tabs and newlines: "/\t/evil" would become "//evil".
        for bad in ["/\t/evil.example", "/\n", "/\r\n/evil", "/\\evil", "/a\\b", "", "evil", "/ /x", "/caf\u{e9}", "/\u{0}", "\t/x"] {
            assert_eq!(safe_next(Some(bad)), "/peertube/review", "{bad:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/peertube/review", "overlong");
        assert_eq!(safe_redirect(Some("/runs/x?y=http://z"), "/runs"), "/runs/x?y=http://z", "a query may hold a URL: it stays a path");
        assert_eq!(safe_redirect(Some("//x"), "/runs"), "/runs");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec![parse_net("127.0.0.1").unwrap(), parse_net("10.0.0.0/8").unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3".parse().unwrap());
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.7".parse().unwrap();
        // From the proxy: the right-most address that is not a proxy (the left one is the client's own claim).
        assert_eq!(client_ip(Some(local), &h, &trusted), "203.0.113.9".parse::<IpAddr>().unwrap());
        // From anyone else the header is ignored.
        assert_eq!(client_ip(Some(stranger), &h, &trusted), stranger);
        assert_eq!(client_ip(Some(local), &h, &[]), local, "no trusted proxies: the peer");
        // No header, or garbage in it: the peer.
        assert_eq!(client_ip(Some(local), &HeaderMap::new(), &trusted), local);
        h.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_ip(Some(local), &h, &trusted), local);
        assert!(parse_net("10.0.0.0/33").is_none() && parse_net("localhost").is_none());
    }

    #[test]
    fn attempts_count_before_the_check_and_per_address() {
        let l = LoginLimiter::with_concurrency(5, Duration::from_secs(60), 2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        // A burst of 100 parallel attempts: five get through to a password check.
        let passed = (0..100).filter(|_| l.try_attempt(ip, t0).is_ok()).count();
        assert_eq!(passed, 5);
        assert!(l.try_attempt("192.0.2.2".parse().unwrap(), t0).is_ok(), "another address is not affected");
        // IPv6 counts per /64: rotating the low bits does not help.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        for i in 0..5 {
            assert!(l.try_attempt(v6(&format!("2001:db8::{i}")), t0).is_ok());
        }
        assert!(l.try_attempt(v6("2001:db8::ffff"), t0).is_err());
        assert!(l.try_attempt(v6("2001:db8:0:1::1"), t0).is_ok(), "another /64");
        l.succeeded(ip);
        assert!(l.try_attempt(ip, t0).is_ok());
    }

    #[tokio::test]
    async fn verification_slots_are_capped() {
        let l = LoginLimiter::with_concurrency(5, Duration::from_secs(60), 2);
        let a = l.verification_slot(Duration::from_millis(10)).await;
        let b = l.verification_slot(Duration::from_millis(10)).await;
        assert!(a.is_some() && b.is_some());
        assert!(l.verification_slot(Duration::from_millis(10)).await.is_none(), "a third waits, then is refused");
        drop(a);
        assert!(l.verification_slot(Duration::from_millis(10)).await.is_some());
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
