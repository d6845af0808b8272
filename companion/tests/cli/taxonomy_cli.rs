//! `recon-companion taxonomy --json` prints exactly the native table.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use std::process::Command;

use serde_json::Value;

fn taxonomy_json() -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_recon-companion")).args(["taxonomy", "--json"]).output().expect("run recon-companion");
    assert!(out.status.success(), "exit {}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn taxonomy_json_equals_native_table() {
    let v = taxonomy_json();
    assert_eq!(v["fingerprint"], shared_constants::fingerprint().as_str());
    let version = v["version"].as_str().expect("version is a string");
    assert!(version.ends_with(&format!("+taxonomy.{}", shared_constants::TAXONOMY_VERSION)), "version {version:?}");
    let rows = v["categories"].as_array().expect("categories is an array");
    assert_eq!(rows.len(), shared_constants::DOMAINS.len());
    for (row, d) in rows.iter().zip(shared_constants::DOMAINS.iter()) {
        assert_eq!(row["id"], i64::from(d.id), "{row}");
        assert_eq!(row["label"], d.label, "{row}");
        assert_eq!(row["slug"], d.slug, "{row}");
    }
}

#[test]
fn taxonomy_table_lists_every_label() {
    let out = Command::new(env!("CARGO_BIN_EXE_recon-companion")).arg("taxonomy").output().expect("run recon-companion");
    assert!(out.status.success(), "exit {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    for d in shared_constants::DOMAINS.iter() {
        assert!(text.lines().any(|l| l.contains(&d.id.to_string()) && l.contains(d.label)), "no line with {} {:?} in:\n{text}", d.id, d.label);
    }
}
