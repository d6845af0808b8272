//! `recon-companion explain` and `spot-check` run as the built binary: tables,
//! `--json`, and the exit codes an operator's script relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use rusqlite::{params, Connection};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use companion::recon::schema::RECON_SCHEMA;

/// (video number, stored domain, concepts of its one window).
type Planned<'a> = (u32, &'a str, &'a [(&'a str, usize)]);

fn h(n: u32) -> String {
    format!("{n:032x}")
}

fn window(dir: &Path, hash: &str, pairs: &[(&str, usize)]) {
    let d = dir.join("concepts").join(hash);
    fs::create_dir_all(&d).expect("mkdir");
    let items: Vec<String> = pairs.iter().flat_map(|&(dom, n)| std::iter::repeat_n(format!("{{\"domain\": \"{dom}\"}}"), n)).collect();
    fs::write(d.join("window_0001.json"), format!("[{}]", items.join(", "))).expect("write");
}

/// Three assigned videos: 1 clear Medical, 2 narrow Medical, 3 a Security win.
fn fixture(dir: &Path) {
    let mut conn = Connection::open(dir.join("recon.db")).expect("open");
    conn.execute_batch(RECON_SCHEMA).expect("schema");
    companion::recon::db::migrate(&mut conn).expect("migrate");
    let docs: [Planned; 3] =
        [(1, "Medical", &[("Medical", 5), ("Security", 1)]), (2, "Medical", &[("Medical", 2), ("Security", 1)]), (3, "Security", &[("Security", 4)])];
    for (n, dom, pairs) in docs {
        conn.execute(
            "INSERT INTO catalogue(hash, filename, path, source, category) VALUES (?1, 'v.mp4', ?2, 'stream.echo6.co', 'Prep')",
            params![h(n), format!("https://stream.echo6.co/w/{n:08x}-0000-4000-8000-{n:012x}")],
        )
        .expect("catalogue");
        conn.execute(
            "INSERT INTO documents(hash, filename, book_title, status, recon_domain, recon_domain_status)
             VALUES (?1, 'v.mp4', ?2, 'complete', ?3, 'assigned')",
            params![h(n), format!("Video {n}"), dom],
        )
        .expect("documents");
        window(dir, &h(n), pairs);
    }
    let cfg = format!("recon_db = {:?}\nconcepts_dir = {:?}\nreports_dir = {:?}\n", dir.join("recon.db"), dir.join("concepts"), dir.join("reports"));
    fs::write(dir.join("companion.toml"), cfg).expect("config");
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recon-companion"))
        .current_dir(dir)
        .arg("--config")
        .arg(dir.join("companion.toml"))
        .args(args)
        .output()
        .expect("run recon-companion")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn explain_prints_tables_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let o = run(dir.path(), &["explain", &h(1)]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    for want in ["Video 1", "Prep", "window_0001.json", "Medical 5, Security 1", "rule: clear winner", "Up to date"] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }

    let o = run(dir.path(), &["--json", "explain", "https://stream.echo6.co/w/00000002-0000-4000-8000-000000000002"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["hash"], h(2));
    assert_eq!(v["rule"], "clear_winner");
    assert_eq!(v["stale"], false);
    assert_eq!(v["totals"][0]["domain"], "Medical");
    assert_eq!(v["totals"][0]["count"], 2);
}

#[test]
fn explain_bad_target_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let o = run(dir.path(), &["explain", "../../etc/passwd"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a document hash"));
    let o = run(dir.path(), &["explain", &h(9)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
}

#[test]
fn spot_check_exit_code_follows_staleness() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let o = run(dir.path(), &["spot-check", "--seed", "5"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    assert!(text.contains("3 of 3 assigned") && text.contains("--seed 5"), "{text}");
    assert!(text.contains("1 narrow") && text.contains("0 stale"), "{text}");

    // Video 3's files now favour Medical: the check fails, and says which one.
    window(dir.path(), &h(3), &[("Medical", 4)]);
    let o = run(dir.path(), &["--json", "spot-check", "--sample", "3", "--seed", "5"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["summary"]["stale"], 1);
    assert_eq!(v["seed"], 5);
    let stale: Vec<&serde_json::Value> = v["verdicts"].as_array().expect("array").iter().filter(|x| x["stale"] == true).collect();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0]["hash"], h(3));

    let o = run(dir.path(), &["spot-check", "--status", "nonsense"]);
    assert_eq!(o.status.code(), Some(2));
}
