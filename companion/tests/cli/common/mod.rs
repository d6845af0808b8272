//! Fixtures shared by the companion's CLI tests: generated RECON data dirs,
//! running the built binary, and snapshots of recon.db.
#![allow(dead_code)]

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_recon-companion");

/// A generated RECON data dir in a temp dir.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn demo(docs: usize, seed: u64) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = companion::demo::DemoSpec { seed, ..companion::demo::DemoSpec::demo(docs) };
        companion::demo::generate(dir.path(), &spec).expect("generate demo data");
        Fixture { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    pub fn db(&self) -> PathBuf {
        self.root().join("recon.db")
    }
    pub fn concepts(&self) -> PathBuf {
        self.root().join("concepts")
    }

    /// Runs the binary against this data dir.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(BIN)
            .args(["--recon-db", path_str(&self.db()), "--concepts-dir", path_str(&self.concepts())])
            .args(["--reports-dir", path_str(&self.root().join("reports"))])
            .args(args)
            .env_remove("RUST_LOG")
            .env("RECON_COMPANION_QUARANTINE_DIR", self.root().join("quarantine"))
            .current_dir(self.root())
            .output()
            .expect("run recon-companion");
        out
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "recon-companion {args:?} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let s = self.ok(&a);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    pub fn conn(&self) -> Connection {
        Connection::open(self.db()).expect("open recon.db")
    }

    /// Copies the whole data dir (db + concepts) to a new temp dir.
    pub fn copy(&self) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(self.root(), dir.path());
        Fixture { dir }
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

pub fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).status().expect("cp");
    assert!(status.success(), "cp -a failed");
}

/// Every document's (hash, domain, status), sorted by hash.
pub fn assignments(conn: &Connection) -> Vec<(String, Option<String>, Option<String>)> {
    let mut stmt = conn.prepare("SELECT hash, recon_domain, recon_domain_status FROM documents ORDER BY hash").expect("prepare");
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).expect("query").collect::<Result<Vec<_>, _>>().expect("rows");
    rows
}

/// A full dump of documents + catalogue as text lines, for before/after comparisons.
pub fn dump(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["documents", "catalogue"] {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY hash")).expect("prepare");
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                let mut s = String::from(table);
                for i in 0..n {
                    let v: rusqlite::types::Value = r.get(i)?;
                    s.push('|');
                    s.push_str(&format!("{v:?}"));
                }
                Ok(s)
            })
            .expect("query")
            .collect::<Result<Vec<_>, _>>()
            .expect("rows");
        out.extend(rows);
    }
    out
}

/// Sorted list of (relative path, size) under a dir.
pub fn tree(root: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).expect("prefix").display().to_string();
            if p.is_dir() {
                out.push((rel + "/", 0));
                walk(base, &p, out);
            } else {
                out.push((rel, e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    }
    walk(root, root, &mut out);
    out.sort();
    out
}
