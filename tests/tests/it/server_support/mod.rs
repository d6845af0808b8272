//! Shared by the server_* tests: a small RECON data dir with review items, an
//! app state with a fake pusher, and an HTTP client for the router (tower oneshot).
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use companion::config::{CallerConfig, Config};
use companion::context::Env;
use companion::error::DbContext;
use companion::error::Result;
use companion::server::push_queue::{PushResult, Pusher};
use companion::server::state::AppState;
use http_body_util::BodyExt;
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery staple";
pub const CALLER: &str = "recon";
pub const CALLER_TOKEN: &str = "recon-token-0123456789";
pub const OTHER_CALLER: &str = "admin";
pub const OTHER_TOKEN: &str = "admin-token-9876543210";
pub const SOURCE: &str = "stream.echo6.co";

pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

pub fn label(i: usize) -> &'static str {
    shared_constants::DOMAINS[i].label
}

/// A RECON data dir: recon.db (migrated) and concept files.
pub struct Data {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub concepts: PathBuf,
    /// tied_manual documents, oldest first.
    pub tied: Vec<String>,
    pub assigned: Vec<String>,
}

pub fn hash_of(prefix: u32, i: usize) -> String {
    format!("{prefix:08x}{:024x}", i)
}

pub fn uuid_of(hash: &str) -> String {
    format!("{}-{}-{}-{}-{}", &hash[0..8], &hash[8..12], &hash[12..16], &hash[16..20], &hash[20..32])
}

/// Writes one window file: `counts` concepts per domain index.
pub fn write_concepts(concepts: &Path, hash: &str, counts: &[(usize, usize)]) {
    let dir = concepts.join(hash);
    std::fs::create_dir_all(&dir).expect("concept dir");
    let mut items = Vec::new();
    for (d, n) in counts {
        for k in 0..*n {
            items.push(serde_json::json!({ "title": format!("c{k}"), "content": "x", "domain": label(*d) }));
        }
    }
    std::fs::write(dir.join("window_0001.json"), serde_json::to_string_pretty(&items).expect("json")).expect("window");
}

#[allow(clippy::too_many_arguments)] // one column each, as in the table
pub fn insert_doc(conn: &Connection, hash: &str, title: &str, channel: &str, status: &str, domain: Option<&str>, dstatus: Option<&str>, at: &str) {
    let url = format!("https://stream.echo6.co/w/{}", uuid_of(hash));
    conn.execute(
        "INSERT INTO catalogue(hash, filename, path, source, category, status, discovered_at) VALUES (?1, ?2, ?3, ?4, ?5, 'complete', ?6)",
        params![hash, format!("{title}.mp4"), url, SOURCE, channel, at],
    )
    .expect("catalogue");
    conn.execute(
        "INSERT INTO documents(hash, filename, path, book_title, status, recon_domain, recon_domain_status, recon_domain_assigned_at, discovered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![hash, format!("{title}.mp4"), url, title, status, domain, dstatus, domain.map(|_| at), at],
    )
    .expect("documents");
}

/// `n_tied` tied_manual videos (ties between domains 0 and 1, or 2 and 3 for
/// odd ones; channels "Alpha" and "Beta"), and `n_assigned` assigned ones.
pub fn data(n_tied: usize, n_assigned: usize) -> Data {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("recon.db");
    let concepts = dir.path().join("concepts");
    std::fs::create_dir_all(&concepts).expect("concepts");
    let mut conn = Connection::open(&db).expect("open");
    conn.execute_batch("PRAGMA journal_mode=WAL;").expect("wal");
    conn.execute_batch(companion::recon::schema::RECON_SCHEMA).expect("schema");
    companion::recon::db::migrate(&mut conn).expect("migrate");
    let mut tied = Vec::new();
    let mut assigned = Vec::new();
    for i in 0..n_tied {
        let h = hash_of(0xaaaa_0000, i);
        let (a, b) = if i % 2 == 0 { (0, 1) } else { (2, 3) };
        let fallback = if label(a) < label(b) { label(a) } else { label(b) };
        let ch = if i % 2 == 0 { "Alpha" } else { "Beta" };
        insert_doc(
            &conn,
            &h,
            &format!("Tied video {i}"),
            ch,
            "complete",
            Some(fallback),
            Some("tied_manual"),
            &format!("2026-01-01T00:{:02}:{:02}", i / 60, i % 60),
        );
        write_concepts(&concepts, &h, &[(a, 3), (b, 3), (5, 1)]);
        tied.push(h);
    }
    for i in 0..n_assigned {
        let h = hash_of(0xbbbb_0000, i);
        insert_doc(&conn, &h, &format!("Clear video {i}"), "Alpha", "complete", Some(label(4)), Some("assigned"), "2026-01-02T00:00:00");
        write_concepts(&concepts, &h, &[(4, 5)]);
        assigned.push(h);
    }
    Data { dir, db, concepts, tied, assigned }
}

impl Data {
    pub fn conn(&self) -> Connection {
        let c = Connection::open(&self.db).expect("open");
        c.busy_timeout(std::time::Duration::from_secs(10)).expect("busy");
        c
    }

    pub fn columns(&self, hash: &str) -> (Option<String>, Option<String>, Option<String>) {
        self.conn()
            .query_row("SELECT recon_domain, recon_domain_status, peertube_category_pushed_at FROM documents WHERE hash = ?1", [hash], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("row")
    }

    pub fn env(&self) -> Env {
        Env {
            recon_db: self.db.clone(),
            concepts_dir: self.concepts.clone(),
            reports_dir: self.dir.path().join("reports"),
            quarantine_dir: self.dir.path().join("quarantine"),
            source: SOURCE.into(),
            mega_threshold: 500,
            mega_skip: vec!["Transcript".into()],
            progress: false,
            concepts: Default::default(),
            second_source: None,
        }
    }

    pub fn config(&self) -> Config {
        let mut cfg =
            Config { recon_db: self.db.clone(), concepts_dir: self.concepts.clone(), reports_dir: self.dir.path().join("reports"), ..Config::default() };
        cfg.server.password_hash = Some(companion::server::auth::hash_password_cheap(PASSWORD).expect("hash"));
        cfg.server.callers.insert(CALLER.into(), CallerConfig { token_sha256: sha256_hex(CALLER_TOKEN) });
        cfg.server.callers.insert(OTHER_CALLER.into(), CallerConfig { token_sha256: sha256_hex(OTHER_TOKEN) });
        cfg.server.public_url = "https://stream.echo6.co".into();
        // Nothing listens there: a forgotten real pusher fails fast.
        cfg.peertube.url = "http://127.0.0.1:9".into();
        cfg
    }
}

/// A pusher that records what it was asked and marks documents pushed in recon.db,
/// or fails while `fail` is set.
pub struct FakePusher {
    pub db: PathBuf,
    pub pushed: Mutex<Vec<(String, std::time::Instant)>>,
    pub fail: Mutex<Option<String>>,
}

impl FakePusher {
    pub fn new(db: &Path) -> Arc<FakePusher> {
        Arc::new(FakePusher { db: db.to_path_buf(), pushed: Mutex::new(Vec::new()), fail: Mutex::new(None) })
    }
    pub fn hashes(&self) -> Vec<String> {
        self.pushed.lock().expect("lock").iter().map(|(h, _)| h.clone()).collect()
    }
}

impl Pusher for FakePusher {
    fn push(&self, hashes: &[String]) -> Result<Vec<PushResult>> {
        if let Some(msg) = self.fail.lock().expect("lock").clone() {
            return Ok(hashes.iter().map(|h| PushResult::failed(h, msg.clone(), false)).collect());
        }
        let conn = Connection::open(&self.db).ctx("testkit::mod::push")?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).ctx("testkit::mod::push")?;
        let mut out = Vec::new();
        for h in hashes {
            conn.execute("UPDATE documents SET peertube_category_pushed_at = ?2 WHERE hash = ?1", params![h, companion::recon::db::now()])
                .ctx("testkit::mod::push")?;
            self.pushed.lock().expect("lock").push((h.clone(), std::time::Instant::now()));
            out.push(PushResult::ok(h));
        }
        Ok(out)
    }
    fn check(&self) -> Result<String> {
        Ok("fake PeerTube: in parity".into())
    }
}

pub fn state(d: &Data, cfg: Config, pusher: Arc<dyn Pusher>) -> AppState {
    let st = AppState::new(cfg, d.env(), pusher).expect("state");
    st.snapshot.rebuild(&st.env, &st.cfg.server.public_url).expect("snapshot");
    st
}

/// A client of the router that keeps cookies like a browser would.
pub struct Client {
    pub app: axum::Router,
    pub cookies: Vec<(String, String)>,
    pub csrf: Option<String>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn location(&self) -> String {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
    }
}

/// The value of `name="csrf" value="…"` in a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}

impl Client {
    pub fn new(st: &AppState) -> Client {
        Client { app: companion::server::router(st.clone()), cookies: Vec::new(), csrf: None }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub async fn send(&mut self, req: Request<Body>) -> Resp {
        let resp: Response<Body> = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        for c in headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let kv = c.split(';').next().unwrap_or_default();
            if let Some((k, v)) = kv.split_once('=') {
                self.cookies.retain(|(n, _)| n != k);
                if !v.is_empty() && !c.contains("Max-Age=0") {
                    self.cookies.push((k.to_string(), v.to_string()));
                }
            }
        }
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        Resp { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub fn req(&self, method: &str, uri: &str) -> axum::http::request::Builder {
        let mut b = Request::builder().method(method).uri(uri);
        if !self.cookies.is_empty() {
            b = b.header(header::COOKIE, self.cookie_header());
        }
        b
    }

    pub async fn get(&mut self, uri: &str) -> Resp {
        let r = self.req("GET", uri).body(Body::empty()).expect("request");
        self.send(r).await
    }

    pub async fn post_form(&mut self, uri: &str, form: &[(&str, &str)]) -> Resp {
        let body: String = form_body(form);
        let r = self.req("POST", uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::from(body)).expect("request");
        self.send(r).await
    }

    pub async fn post_json(&mut self, uri: &str, json: serde_json::Value, csrf: Option<&str>) -> Resp {
        let mut b = self.req("POST", uri).header(header::CONTENT_TYPE, "application/json");
        if let Some(c) = csrf {
            b = b.header("x-csrf-token", c);
        }
        let r = b.body(Body::from(json.to_string())).expect("request");
        self.send(r).await
    }

    /// Logs in through the form; keeps the session cookie and the page's CSRF token.
    pub async fn login(&mut self, password: &str) -> Resp {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let token = csrf_in(&form.body).expect("login csrf");
        let r = self.post_form("/login", &[("password", password), ("csrf", &token), ("next", "/peertube/review")]).await;
        if r.status == StatusCode::SEE_OTHER {
            let page = self.get("/peertube/review").await;
            self.csrf = csrf_in(&page.body);
        }
        r
    }
}

pub fn form_body(form: &[(&str, &str)]) -> String {
    form.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn enc(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// A machine client's headers.
pub fn caller(b: axum::http::request::Builder, name: &str, token: &str) -> axum::http::request::Builder {
    b.header("x-caller-service", name).header(header::AUTHORIZATION, format!("Bearer {token}"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}
