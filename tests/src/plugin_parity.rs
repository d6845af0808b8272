//! Parity between the packed PeerTube plugin and the native taxonomy: finding and
//! unpacking the tarball, running the PeerTube stand-in on it, and comparing its report.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::Value;

/// What the PeerTube stand-in (`plugin-js/test/peertube-host.js`) reported.
#[derive(Debug, Clone, PartialEq)]
pub struct HostReport {
    pub registered: Vec<(i64, String)>,
    pub refused: Vec<(i64, String)>,
    pub route_status: Option<i64>,
    pub route_fingerprint: Option<String>,
    pub route_version: Option<String>,
    pub route_categories: Vec<(i64, String)>,
    pub after_unregister: Vec<i64>,
    pub builtins_intact: bool,
    pub register_ms: f64,
}

const BUILD_HINT: &str = "run scripts/build-plugin.sh (it builds the wasm and packs plugin-js/*.tgz)";

/// The repository root (the workspace this crate lives in).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".."))
}

/// The one `npm pack` tarball in `plugin_js`, refusing a missing, ambiguous or
/// stale one: a tarball older than the sources it is built from would test old code.
pub fn find_tarball(root: &Path) -> Result<PathBuf, String> {
    let plugin_js = root.join("plugin-js");
    let entries = fs::read_dir(&plugin_js).map_err(|e| format!("cannot read {}: {e}", plugin_js.display()))?;
    let mut tarballs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "tgz")).collect();
    tarballs.sort();
    let tarball = match tarballs.as_slice() {
        [] => return Err(format!("no plugin tarball in {}: {BUILD_HINT}", plugin_js.display())),
        [one] => one.clone(),
        many => return Err(format!("several tarballs in {} ({many:?}): {BUILD_HINT}", plugin_js.display())),
    };
    let packed_at = modified(&tarball)?;
    let sources = [
        root.join("shared-constants/src"),
        root.join("shared-constants/Cargo.toml"),
        root.join("plugin-wasm/src"),
        root.join("plugin-wasm/Cargo.toml"),
        root.join("plugin-js/main.js"),
        root.join("plugin-js/package.json"),
    ];
    for source in &sources {
        if let Some(newer) = newest_file(source)?.filter(|(t, _)| *t > packed_at) {
            return Err(format!("{} is older than {}: {BUILD_HINT}", tarball.display(), newer.1.display()));
        }
    }
    Ok(tarball)
}

fn modified(path: &Path) -> Result<SystemTime, String> {
    fs::metadata(path).and_then(|m| m.modified()).map_err(|e| format!("cannot stat {}: {e}", path.display()))
}

/// Newest modification time under `path` (a file or a directory tree).
fn newest_file(path: &Path) -> Result<Option<(SystemTime, PathBuf)>, String> {
    if !path.exists() {
        return Ok(None);
    }
    if path.is_file() {
        return Ok(Some((modified(path)?, path.to_path_buf())));
    }
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let entries = fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if let Some(found) = newest_file(&entry.path())? {
            let is_newer = match &newest {
                None => true,
                Some((t, _)) => found.0 > *t,
            };
            if is_newer {
                newest = Some(found);
            }
        }
    }
    Ok(newest)
}

/// Paths inside the tarball, as `tar -tzf` lists them.
pub fn list_tarball(tarball: &Path) -> Result<Vec<String>, String> {
    let out = run(Command::new("tar").arg("-tzf").arg(tarball))?;
    Ok(out.lines().map(str::to_owned).collect())
}

/// Unpacks the tarball into `dest`; returns the package directory (npm's `package/`).
pub fn unpack(tarball: &Path, dest: &Path) -> Result<PathBuf, String> {
    run(Command::new("tar").arg("-xzf").arg(tarball).arg("-C").arg(dest))?;
    let package = dest.join("package");
    if package.join("package.json").is_file() {
        Ok(package)
    } else {
        Err(format!("{} has no package/package.json", tarball.display()))
    }
}

/// Runs the PeerTube stand-in with node on an unpacked package; returns its JSON report.
pub fn run_host(root: &Path, package_dir: &Path) -> Result<String, String> {
    let harness = root.join("plugin-js/test/peertube-host.js");
    run(Command::new("node").arg(&harness).arg(package_dir))
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| format!("cannot start {shown}: {e} (is it installed? scripts/setup.sh installs it)"))?;
    if !out.status.success() {
        return Err(format!("{shown} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("{shown} printed non-UTF-8: {e}"))
}

fn pairs(v: Option<&Value>) -> Result<Vec<(i64, String)>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let items = v.as_array().ok_or_else(|| format!("expected an array of {{id, label}}, got {v}"))?;
    items
        .iter()
        .map(|item| {
            let id = item.get("id").and_then(Value::as_i64);
            let label = item.get("label").and_then(Value::as_str);
            match (id, label) {
                (Some(id), Some(label)) => Ok((id, label.to_owned())),
                _ => Err(format!("not an {{id, label}} object: {item}")),
            }
        })
        .collect()
}

/// Parses the stand-in's JSON report.
pub fn parse_report(json: &str) -> Result<HostReport, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("report is not JSON: {e}: {json}"))?;
    let route = v.get("route").filter(|r| !r.is_null());
    let body = route.and_then(|r| r.get("body"));
    Ok(HostReport {
        registered: pairs(v.get("registered"))?,
        refused: pairs(v.get("refused"))?,
        route_status: route.and_then(|r| r.get("status")).and_then(Value::as_i64),
        route_fingerprint: body.and_then(|b| b.get("fingerprint")).and_then(Value::as_str).map(str::to_owned),
        route_version: body.and_then(|b| b.get("version")).and_then(Value::as_str).map(str::to_owned),
        route_categories: pairs(body.and_then(|b| b.get("categories")))?,
        after_unregister: v
            .get("afterUnregister")
            .and_then(Value::as_array)
            .ok_or("report lacks afterUnregister")?
            .iter()
            .map(|x| x.as_i64().ok_or_else(|| format!("bad id {x}")))
            .collect::<Result<_, _>>()?,
        builtins_intact: v.get("builtinsIntact").and_then(Value::as_bool).ok_or("report lacks builtinsIntact")?,
        register_ms: v.get("registerMs").and_then(Value::as_f64).ok_or("report lacks registerMs")?,
    })
}

/// The native table as `(id, label)` pairs, in id order.
pub fn native_table() -> Vec<(i64, String)> {
    shared_constants::DOMAINS.iter().map(|d| (i64::from(d.id), d.label.to_owned())).collect()
}

fn diff_tables(what: &str, got: &[(i64, String)], want: &[(i64, String)], out: &mut Vec<String>) {
    if got.len() != want.len() {
        out.push(format!("{what}: {} categories, native table has {}", got.len(), want.len()));
    }
    for (g, w) in got.iter().zip(want) {
        if g != w {
            out.push(format!("{what}: got {} {:?}, native {} {:?}", g.0, g.1, w.0, w.1));
        }
    }
}

/// Every way the plugin's behaviour in the stand-in differs from the native
/// taxonomy; empty means parity.
pub fn compare_with_native(report: &HostReport) -> Vec<String> {
    let want = native_table();
    let mut out = Vec::new();
    diff_tables("registered", &report.registered, &want, &mut out);
    diff_tables("route categories", &report.route_categories, &want, &mut out);
    if !report.refused.is_empty() {
        out.push(format!("refused by the host: {:?}", report.refused));
    }
    if report.route_status != Some(200) {
        out.push(format!("route answered {:?}, want 200", report.route_status));
    }
    let native = shared_constants::fingerprint();
    if report.route_fingerprint.as_deref() != Some(native.as_str()) {
        out.push(format!("route fingerprint {:?}, native {native}", report.route_fingerprint));
    }
    if !report.after_unregister.is_empty() {
        out.push(format!("left after unregister: {:?}", report.after_unregister));
    }
    if !report.builtins_intact {
        out.push("built-in categories 1-18 were changed".to_owned());
    }
    out
}

/// Replaces every occurrence of `from` by `to` (same length) in `data`; returns the count.
pub fn patch_bytes(data: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    assert_eq!(from.len(), to.len(), "a patch must keep the length");
    if from.is_empty() {
        return 0;
    }
    let mut count = 0;
    let mut i = 0;
    while i + from.len() <= data.len() {
        if &data[i..i + from.len()] == from {
            data[i..i + from.len()].copy_from_slice(to);
            count += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perfect() -> HostReport {
        let table = native_table();
        HostReport {
            registered: table.clone(),
            refused: vec![],
            route_status: Some(200),
            route_fingerprint: Some(shared_constants::fingerprint()),
            route_version: Some("0.1.0+taxonomy.1".into()),
            route_categories: table,
            after_unregister: vec![],
            builtins_intact: true,
            register_ms: 1.0,
        }
    }

    #[test]
    fn perfect_report_has_parity() {
        assert_eq!(compare_with_native(&perfect()), Vec::<String>::new());
    }

    #[test]
    fn each_defect_is_reported() {
        let mut r = perfect();
        r.registered[6].1 = "Medicax".into();
        assert!(compare_with_native(&r)[0].contains("106"));

        let mut r = perfect();
        r.registered.pop();
        assert_eq!(compare_with_native(&r).len(), 1);

        let mut r = perfect();
        r.route_fingerprint = Some("0000000000000000".into());
        assert!(compare_with_native(&r)[0].contains("fingerprint"));

        let mut r = perfect();
        r.after_unregister = vec![100];
        assert!(compare_with_native(&r)[0].contains("after unregister"));

        let mut r = perfect();
        r.builtins_intact = false;
        assert!(compare_with_native(&r)[0].contains("built-in"));

        let mut r = perfect();
        r.route_status = None;
        assert_eq!(compare_with_native(&r).len(), 1);
    }

    #[test]
    fn patch_replaces_all_and_counts() {
        let mut data = b"xMedicalyMedical".to_vec();
        assert_eq!(patch_bytes(&mut data, b"Medical", b"Medicax"), 2);
        assert_eq!(&data, b"xMedicaxyMedicax");
        assert_eq!(patch_bytes(&mut data, b"Medical", b"Medicax"), 0);
    }

    #[test]
    fn report_parses() {
        let json = r#"{"registered":[{"id":100,"label":"A"}],"refused":[],
            "route":{"status":200,"body":{"version":"v","fingerprint":"f","categories":[{"id":100,"label":"A"}]}},
            "afterUnregister":[],"builtinsIntact":true,"registerMs":3.5}"#;
        let r = parse_report(json).expect("parses");
        assert_eq!(r.registered, vec![(100, "A".to_owned())]);
        assert_eq!(r.route_fingerprint.as_deref(), Some("f"));
        assert_eq!(r.register_ms, 3.5);
        assert!(parse_report(r#"{"registered":[]}"#).is_err());
    }
}
