//! `recon-companion bench`: builds a production-sized RECON data set once and
//! times the dry run, the backfill, the tiebreaker and a whole-library
//! reassessment, each in a child process
//! so its peak RSS is its own; prints docs/s, MB/s of concept JSON and peak RSS.

use super::{self as demo, DemoSpec};
use crate::error::{Error, Result};
use crate::output;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub phase: String,
    pub docs: u64,
    pub seconds: f64,
    pub docs_per_sec: f64,
    pub concept_mb: f64,
    pub mb_per_sec: f64,
    pub peak_rss_mb: f64,
    pub target: String,
}

fn dir_bytes(p: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    for e in rd.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => total += dir_bytes(&e.path()),
            Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => {}
        }
    }
    total
}

/// A finished child process: its stdout, wall seconds and peak RSS.
#[derive(Debug, Clone)]
pub struct ChildRun {
    pub stdout: String,
    pub seconds: f64,
    /// The child's own `ru_maxrss`, in MB.
    pub peak_rss_mb: f64,
}

/// Runs `cmd` with stdout captured (stderr inherited), waits for it with
/// `wait4` so its peak RSS is its own, and fails unless it exits 0.
pub fn run_measured(mut cmd: Command) -> Result<ChildRun> {
    let what = format!("{cmd:?}");
    let start = Instant::now();
    let child =
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::inherit()).spawn().map_err(|e| Error::Other(format!("spawn {what}: {e}")))?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.ok_or_else(|| Error::Other("no child stdout".into()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut text).map_err(|e| Error::Other(format!("child stdout: {e}")))?;
    // wait4 gives this child's own rusage (ru_maxrss, KiB on Linux).
    let mut status = 0;
    // SAFETY: rusage is plain old data, zero-initialised and filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own un-waited child; pointers are valid for the call.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    if rc < 0 || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(Error::Other(format!("{what} failed (status {status})")));
    }
    Ok(ChildRun { stdout: text, seconds, peak_rss_mb: usage.ru_maxrss as f64 / 1024.0 })
}

/// Runs this binary as a child and returns (stdout JSON, seconds, peak RSS in MB).
fn timed_child(args: &[&str]) -> Result<(Value, f64, f64)> {
    let exe = std::env::current_exe().map_err(|e| Error::Other(format!("current exe: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.args(args);
    let r = run_measured(cmd)?;
    let v: Value = serde_json::from_str(&r.stdout)?;
    Ok((v, r.seconds, r.peak_rss_mb))
}

/// The bench's production-sized data set of `docs` videos under `dir/data`
/// (recon.db + concepts/), generated once and reused while `dir` holds the
/// marker of that size (another size replaces the dir); returns `dir/data`.
pub fn ensure_data(dir: &Path, docs: usize) -> Result<PathBuf> {
    let spec = DemoSpec { docs, ..DemoSpec::production() };
    let data = dir.join("data");
    let marker = dir.join(format!("generated-{docs}.json"));
    if !marker.is_file() {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        eprintln!("generating {docs} videos into {} (once; reused afterwards)…", data.display());
        let s = demo::generate(&data, &spec)?;
        std::fs::write(&marker, serde_json::to_string_pretty(&s)?).map_err(|e| Error::io(&marker, e))?;
        eprintln!("generated in {:.1} s", s.elapsed_ms as f64 / 1000.0);
    }
    Ok(data)
}

pub fn run(dir: &Path, docs: usize, json: bool) -> Result<i32> {
    let data = ensure_data(dir, docs)?;
    // Each run works on a fresh copy of the pristine db; the concept files are shared.
    let pristine = data.join("recon.db");
    let work = dir.join("work.db");
    let copy_db = || -> Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(PathBuf::from(format!("{}{suffix}", work.display())));
        }
        std::fs::copy(&pristine, &work).map_err(|e| Error::io(&work, e))?;
        Ok(())
    };
    copy_db()?;
    let concepts = data.join("concepts");
    let reports = dir.join("reports");
    let (w, c, r) = (work.display().to_string(), concepts.display().to_string(), reports.display().to_string());
    let base = ["--json", "--recon-db", w.as_str(), "--concepts-dir", c.as_str(), "--reports-dir", r.as_str()];
    let with = |extra: &[&'static str]| -> Vec<String> { base.iter().map(|s| s.to_string()).chain(extra.iter().map(|s| s.to_string())).collect() };
    let call = |extra: &[&'static str]| -> Result<(Value, f64, f64)> {
        let a = with(extra);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        timed_child(&refs)
    };

    eprintln!("warming the page cache…");
    call(&["assign-categories", "--backfill", "--dry-run"])?;
    let (dry, t_dry, rss_dry) = call(&["assign-categories", "--backfill", "--dry-run"])?;
    call(&["migrate"])?;
    let (back, t_back, rss_back) = call(&["assign-categories", "--backfill"])?;
    let (tie, t_tie, rss_tie) = call(&["assign-categories", "--tiebreaker-pass"])?;
    // The whole library recomputed (nothing changed: every row read, none written).
    let (re, t_re, rss_re) = call(&["assign-categories", "--reassess"])?;

    let mb = |v: &Value| v["concept_bytes"].as_u64().unwrap_or(0) as f64 / 1e6;
    let total_mb = dir_bytes(&concepts) as f64 / 1e6;
    let n = |v: &Value| v["selected"].as_u64().unwrap_or(0);
    let phase = |name: &str, v: &Value, t: f64, rss: f64, target: &str| {
        let m = if mb(v) > 0.0 {
            mb(v)
        } else if name == "tiebreaker" {
            0.0
        } else {
            total_mb
        };
        Phase {
            phase: name.into(),
            docs: n(v),
            seconds: t,
            docs_per_sec: n(v) as f64 / t,
            concept_mb: m,
            mb_per_sec: m / t,
            peak_rss_mb: rss,
            target: target.into(),
        }
    };
    let phases = vec![
        phase("dry run", &dry, t_dry, rss_dry, "-"),
        phase("backfill", &back, t_back, rss_back, "< 3 s, < 200 MB"),
        phase("tiebreaker", &tie, t_tie, rss_tie, "< 1 s, < 200 MB"),
        phase("reassess", &re, t_re, rss_re, "< the backfill"),
    ];
    if json {
        output::print_json(&serde_json::json!({ "docs": docs, "concept_mb_on_disk": total_mb, "phases": phases,
            "backfill": back["tally"], "tiebreaker": tie["tally"] }))?;
    } else {
        println!("{docs} videos, {total_mb:.0} MB of concept JSON on disk, {} cores", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
        println!(
            "{}",
            output::table(
                &["phase", "docs", "seconds", "docs/s", "MB read", "MB/s", "peak RSS MB", "target"],
                phases.iter().map(|p| {
                    vec![
                        p.phase.clone(),
                        p.docs.to_string(),
                        format!("{:.2}", p.seconds),
                        format!("{:.0}", p.docs_per_sec),
                        format!("{:.0}", p.concept_mb),
                        format!("{:.0}", p.mb_per_sec),
                        format!("{:.0}", p.peak_rss_mb),
                        p.target.clone(),
                    ]
                })
            )
        );
        println!("times include process start-up and opening recon.db (wall clock, page cache warm)");
    }
    Ok(0)
}
