//! Browser test of the dashboard: a real `recon-companion serve` on a demo
//! dataset, driven in headless Chromium by tests/browser/review.test.mjs
//! (playwright-core + Debian's /usr/bin/chromium): log in, assign a domain on
//! the review page, see the row leave the queue; the security headers arrive
//! and the CSP lets the page's hashed style through. Fails — never skips — when
//! node, chromium or playwright-core is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use crate::server_support;

use server_support::repo_root;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "browser-test-password";

/// Kills the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The CLI binary, built if needed (scripts/test.sh builds it before the tests).
fn binary() -> PathBuf {
    let root = repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "recon-companion", "--bin", "recon-companion"])
        .current_dir(&root)
        .status()
        .expect("running cargo build");
    assert!(status.success(), "cargo build -p recon-companion failed");
    let bin = target.join("debug").join("recon-companion");
    assert!(bin.is_file(), "{} missing", bin.display());
    bin
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn tool(name: &str, path: &Path) {
    assert!(path.exists(), "{name} is required for the browser test but {} is missing: run scripts/setup.sh", path.display());
}

#[test]
fn review_page_in_headless_chromium() {
    // Prerequisites: a missing one is a failure, not a skip.
    tool("chromium", Path::new("/usr/bin/chromium"));
    let node_ok = Command::new("node").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(node_ok, "node is required for the browser test: run scripts/setup.sh");
    let browser_dir = repo_root().join("tests/browser");
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&browser_dir));
    }
    tool("playwright-core", &browser_dir.join("node_modules/playwright-core"));

    let bin = binary();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("demo");
    // The demo walks the runbook: migrate, backfill, tiebreaker → tied_manual videos.
    run(Command::new(&bin).current_dir(tmp.path()).args(["demo", "--dir"]).arg(&data).args(["--docs", "500", "--force"]));
    let before = rusqlite::Connection::open(data.join("recon.db"))
        .expect("db")
        .query_row("SELECT count(*) FROM documents WHERE recon_domain_status = 'tied_manual'", [], |r| r.get::<_, i64>(0))
        .expect("count");
    assert!(before > 0, "the demo should leave videos for review");

    let port = free_port();
    let phc = companion::server::auth::hash_password_cheap(PASSWORD).expect("hash");
    let cfg = tmp.path().join("recon-companion.toml");
    std::fs::write(
        &cfg,
        format!(
            "recon_db = {db:?}\nconcepts_dir = {c:?}\nreports_dir = {r:?}\n\n[peertube]\n# Nothing listens here: pushes fail fast and stay pending.\nurl = \"http://127.0.0.1:9\"\nmax_retries = 0\n\n[server]\nbind = \"127.0.0.1:{port}\"\npassword_hash = {phc:?}\npoll_interval_secs = 1\n",
            db = data.join("recon.db").display().to_string(),
            c = data.join("concepts").display().to_string(),
            r = data.join("reports").display().to_string(),
        ),
    )
    .expect("config");
    let log = std::fs::File::create(tmp.path().join("serve.log")).expect("log");
    let child =
        Command::new(&bin).current_dir(tmp.path()).arg("--config").arg(&cfg).arg("serve").stdout(Stdio::null()).stderr(log).spawn().expect("spawn serve");
    let server = Server(child);
    let t0 = Instant::now();
    while http_get(port, "/healthz").is_none_or(|r| !r.starts_with("HTTP/1.1 200")) {
        assert!(t0.elapsed() < Duration::from_secs(30), "serve did not come up: {}", std::fs::read_to_string(tmp.path().join("serve.log")).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = Command::new("node")
        .arg(browser_dir.join("review.test.mjs"))
        .env("BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("PASSWORD", PASSWORD)
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        std::fs::read_to_string(tmp.path().join("serve.log")).unwrap_or_default()
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("the script's JSON line");
    assert_eq!(seen["ok"], true);
    assert_eq!(seen["headers"]["xfo"], "DENY", "{seen}");
    assert!(seen["headers"]["csp"].as_str().is_some_and(|c| c.contains("frame-ancestors 'none'")), "{seen}");
    let hash = seen["hash"].as_str().expect("hash");
    let domain = seen["domain"].as_str().expect("domain");
    drop(server);

    // What the browser did is in recon.db.
    let conn = rusqlite::Connection::open(data.join("recon.db")).expect("db");
    let (d, s): (String, String) =
        conn.query_row("SELECT recon_domain, recon_domain_status FROM documents WHERE hash = ?1", [hash], |r| Ok((r.get(0)?, r.get(1)?))).expect("row");
    assert_eq!((d.as_str(), s.as_str()), (domain, "manual_assigned"));
    let after: i64 = conn.query_row("SELECT count(*) FROM documents WHERE recon_domain_status = 'tied_manual'", [], |r| r.get(0)).expect("count");
    assert_eq!(after, before - 1);
}
