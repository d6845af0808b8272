//! Run reports: one JSON file per state-changing run in the reports dir, with a
//! sha256 of its body so an operator can prove later what a run reported.

use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub run_id: String,
    pub command: String,
    pub arguments: Value,
    pub dry_run: bool,
    pub started_at: String,
    pub finished_at: String,
    pub outcome: String,
    pub counts: Value,
}

/// The report of a run whose process died: what its journal holds, by kind
/// and state (`pending` entries are writes whose outcome was never recorded).
pub fn interrupted(run: &crate::journal::RunRow, journal_counts: Value) -> Report {
    Report {
        run_id: run.run_id.clone(),
        command: run.command.clone(),
        arguments: run.args.clone(),
        dry_run: false,
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone().unwrap_or_default(),
        outcome: crate::journal::INTERRUPTED.to_string(),
        counts: json!({
            "interrupted": true,
            "journal": journal_counts,
            "note": "the run's process died before it finished; every change it made is in the journal and `rollback --run` undoes them",
        }),
    }
}

/// Canonical body → sha256 hex; the file holds `{"body": …, "sha256": …}` so the
/// hash can be checked by re-serialising `body` compactly.
pub fn body_sha256(body: &Value) -> String {
    hex::encode(Sha256::digest(body.to_string().as_bytes()))
}

/// Writes `<dir>/<run_id>.json` atomically (temp file + rename) and returns its path.
pub fn write(dir: &Path, report: &Report) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let body = serde_json::to_value(report)?;
    let sha = body_sha256(&body);
    let doc = json!({ "body": body, "sha256": sha });
    let path = dir.join(format!("{}.json", report.run_id));
    let tmp = dir.join(format!(".{}.json.tmp", report.run_id));
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// Reads a report and checks its hash.
pub fn read_verified(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let doc: Value = serde_json::from_str(&text)?;
    let body = doc.get("body").cloned().unwrap_or(Value::Null);
    let want = doc.get("sha256").and_then(Value::as_str).unwrap_or_default();
    if body_sha256(&body) != want {
        return Err(Error::Other(format!("{}: sha256 does not match the report body", path.display())));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_hash_verifies_and_detects_tampering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Report {
            run_id: "r1".into(),
            command: "backfill".into(),
            arguments: json!({"limit": 5}),
            dry_run: false,
            started_at: "a".into(),
            finished_at: "b".into(),
            outcome: "done".into(),
            counts: json!({"assigned": 3}),
        };
        let p = write(dir.path(), &r).expect("write");
        assert_eq!(read_verified(&p).expect("verify")["counts"]["assigned"], 3);
        let tampered = std::fs::read_to_string(&p).expect("read").replace("\"assigned\": 3", "\"assigned\": 4");
        std::fs::write(&p, tampered).expect("write");
        assert!(read_verified(&p).is_err());
    }
}
