//! The packed PeerTube plugin, loaded by a PeerTube stand-in, registers exactly
//! the native taxonomy; a tampered copy is caught. Needs scripts/build-plugin.sh first.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use std::fs;
use std::path::{Path, PathBuf};

use integration_tests::plugin_parity::{compare_with_native, find_tarball, list_tarball, parse_report, patch_bytes, repo_root, run_host, unpack, HostReport};

const MAX_TARBALL_BYTES: u64 = 200 * 1024;
const MAX_REGISTER_MS: f64 = 50.0;
const WASM_IN_PACKAGE: &str = "dist/plugin_wasm_bg.wasm";

fn tarball() -> PathBuf {
    // Never skip: a missing tarball means the plugin was not built, which is a failure.
    match find_tarball(&repo_root()) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn unpacked(tmp: &Path) -> PathBuf {
    unpack(&tarball(), tmp).unwrap_or_else(|e| panic!("{e}"))
}

fn host_report(package: &Path) -> HostReport {
    let json = run_host(&repo_root(), package).unwrap_or_else(|e| panic!("{e}"));
    parse_report(&json).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn packed_plugin_registers_exactly_the_native_table() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let report = host_report(&unpacked(tmp.path()));
    let mismatches = compare_with_native(&report);
    assert!(mismatches.is_empty(), "plugin and native table differ:\n{}", mismatches.join("\n"));

    // Spelled out too, so a bug in compare_with_native cannot hide a difference.
    let native: Vec<(i64, String)> = shared_constants::DOMAINS.iter().map(|d| (i64::from(d.id), d.label.to_owned())).collect();
    assert_eq!(report.registered, native);
    assert_eq!(report.route_fingerprint.as_deref(), Some(shared_constants::fingerprint().as_str()));
    assert!(report.after_unregister.is_empty(), "left after unregister: {:?}", report.after_unregister);
    assert!(report.builtins_intact, "built-in categories 1-18 changed");
    let version = report.route_version.unwrap_or_default();
    assert!(version.ends_with(&format!("+taxonomy.{}", shared_constants::TAXONOMY_VERSION)), "route version {version:?}");
    assert!(report.register_ms < MAX_REGISTER_MS, "register() took {} ms (limit {MAX_REGISTER_MS})", report.register_ms);
    eprintln!("register() in the stand-in: {:.2} ms", report.register_ms);
}

#[test]
fn tampered_wasm_breaks_parity() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let package = unpacked(tmp.path());
    let wasm_path = package.join(WASM_IN_PACKAGE);
    let mut wasm = fs::read(&wasm_path).unwrap_or_else(|e| panic!("{}: {e}", wasm_path.display()));
    let patched = patch_bytes(&mut wasm, b"Medical", b"Medicax");
    assert!(patched >= 1, "\"Medical\" not found in the packed wasm");
    fs::write(&wasm_path, &wasm).expect("write tampered wasm");

    let report = host_report(&package);
    let mismatches = compare_with_native(&report);
    assert!(!mismatches.is_empty(), "a tampered label went unnoticed");
    assert!(mismatches.iter().any(|m| m.contains("registered") && m.contains("106") && m.contains("Medicax")), "{mismatches:?}");
    assert!(mismatches.iter().any(|m| m.contains("fingerprint")), "{mismatches:?}");
}

#[test]
fn tarball_carries_the_wasm_and_is_small() {
    let tarball = tarball();
    let entries = list_tarball(&tarball).unwrap_or_else(|e| panic!("{e}"));
    for needed in ["package/package.json", "package/main.js", "package/dist/plugin_wasm.js"] {
        assert!(entries.iter().any(|e| e == needed), "{needed} missing from {}: {entries:?}", tarball.display());
    }
    let wasm = format!("package/{WASM_IN_PACKAGE}");
    assert!(entries.contains(&wasm), "{wasm} missing from {} (check `files` in plugin-js/package.json): {entries:?}", tarball.display());
    let size = fs::metadata(&tarball).expect("stat tarball").len();
    assert!(size < MAX_TARBALL_BYTES, "{} is {size} bytes (limit {MAX_TARBALL_BYTES})", tarball.display());
    eprintln!("{}: {size} bytes", tarball.display());
}
