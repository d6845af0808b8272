//! The operator's monitoring files against the service: the alert rules pass
//! `promtool check rules`, cover what an operator must hear about, and every
//! `recon_companion_*` series (and label value) an alert or a dashboard panel
//! names is in a real scrape of `/metrics`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use crate::server_support;

use axum::body::Body;
use axum::http::StatusCode;
use server_support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

const PREFIX: &str = "recon_companion_";

fn alerts_file() -> PathBuf {
    repo_root().join("deploy/prometheus/recon-companion-alerts.yml")
}

fn dashboard_file() -> PathBuf {
    repo_root().join("deploy/grafana/recon-companion.json")
}

/// Sample name → the label sets seen (OpenMetrics text).
type Scrape = BTreeMap<String, Vec<BTreeMap<String, String>>>;

fn parse_scrape(text: &str) -> Scrape {
    let mut out = Scrape::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = line[..name_end].to_string();
        let mut labels = BTreeMap::new();
        if line[name_end..].starts_with('{') {
            let body = &line[name_end + 1..line.find('}').expect("closing brace")];
            for pair in body.split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').expect("label k=v");
                labels.insert(k.to_string(), v.trim_matches('"').to_string());
            }
        }
        out.entry(name).or_default().push(labels);
    }
    out
}

/// One use of a metric in a query: its name and its exact-match label values.
#[derive(Debug)]
struct Use {
    name: String,
    exact: Vec<(String, String)>,
}

/// Every `recon_companion_*` name in a PromQL expression, with the `label="value"`
/// matchers of its selector (regex matchers and Grafana's `$variables` skipped).
fn uses_in(expr: &str) -> Vec<Use> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find(PREFIX) {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = tail[..end].to_string();
        let mut exact = Vec::new();
        let after = &tail[end..];
        if let Some(body) = after.strip_prefix('{') {
            let body = &body[..body.find('}').expect("selector closes")];
            for m in body.split(',') {
                if let Some((k, v)) = m.split_once('=') {
                    let v = v.trim();
                    if !k.ends_with('!') && !v.starts_with('~') && !v.contains('$') {
                        exact.push((k.trim().to_string(), v.trim_matches('"').to_string()));
                    }
                }
            }
        }
        out.push(Use { name, exact });
        rest = &tail[end..];
    }
    out
}

/// (alert name, expr) of every rule, read line by line: the file keeps one
/// `- alert:` and one single-line `expr:` per rule (promtool checks the YAML).
fn alerts() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(alerts_file()).expect("alerts file");
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert:") {
            out.push((name.trim().to_string(), String::new()));
        } else if let Some(expr) = line.strip_prefix("expr:") {
            let last = out.last_mut().expect("expr after an alert");
            assert!(last.1.is_empty(), "two exprs in {}", last.0);
            last.1 = expr.trim().to_string();
        }
    }
    for (name, expr) in &out {
        assert!(!expr.is_empty() && !expr.starts_with('|') && !expr.starts_with('>'), "{name}: expr must be one line");
    }
    out
}

/// (panel title, query) of every panel target and every templating query.
fn dashboard_queries() -> Vec<(String, String)> {
    let d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dashboard_file()).expect("dashboard")).expect("dashboard JSON");
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        let title = p["title"].as_str().unwrap_or("?").to_string();
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("panel {title} has no targets"));
        assert!(!targets.is_empty(), "panel {title} has no targets");
        for t in targets {
            out.push((title.clone(), t["expr"].as_str().unwrap_or_else(|| panic!("panel {title}: target without expr")).to_string()));
        }
    }
    for v in d["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["definition"].as_str() {
            out.push((format!("variable {}", v["name"]), q.to_string()));
        }
    }
    out
}

/// A scrape of a running service: worker ticked, a request served, gauges set.
async fn scrape() -> Scrape {
    let d = data(3, 2);
    let p = FakePusher::new(&d.db);
    let st = state(&d, d.config(), p);
    companion::server::worker::tick(&st).unwrap();
    let mut c = Client::new(&st);
    c.get("/healthz").await;
    let r = c.send(caller(c.req("GET", "/metrics"), CALLER, CALLER_TOKEN).body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    parse_scrape(&r.body)
}

fn check_uses(scrape: &Scrape, what: &str, expr: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for u in uses_in(expr) {
        match scrape.get(&u.name) {
            None => missing.push(format!("{what}: {} is not exported (expr: {expr})", u.name)),
            Some(sets) => {
                for (k, v) in &u.exact {
                    if k == "job" || k == "instance" {
                        continue; // Prometheus adds these at scrape time.
                    }
                    if !sets.iter().any(|s| s.get(k) == Some(v)) {
                        missing.push(format!("{what}: {}{{{k}=\"{v}\"}} never appears (expr: {expr})", u.name));
                    }
                }
            }
        }
    }
    missing
}

#[tokio::test]
async fn every_series_an_alert_or_panel_names_is_exported() {
    let scrape = scrape().await;
    let names: BTreeSet<&String> = scrape.keys().filter(|n| n.starts_with(PREFIX)).collect();
    // The parser itself: histograms come as _bucket/_sum/_count, counters as _total.
    for n in
        ["recon_companion_http_request_duration_seconds_bucket", "recon_companion_pushes_total", "recon_companion_qdrant_ready", "recon_companion_drift_videos"]
    {
        assert!(scrape.contains_key(n), "{n} missing from the scrape: {names:?}");
    }
    let mut missing = Vec::new();
    let mut used = BTreeSet::new();
    let rules = alerts();
    for (name, expr) in &rules {
        assert!(!uses_in(expr).is_empty() || expr.contains("up{"), "alert {name} names no recon_companion metric: {expr}");
        used.extend(uses_in(expr).into_iter().map(|u| u.name));
        missing.extend(check_uses(&scrape, &format!("alert {name}"), expr));
    }
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    for (title, expr) in &queries {
        assert!(!uses_in(expr).is_empty(), "panel {title} names no recon_companion metric: {expr}");
        used.extend(uses_in(expr).into_iter().map(|u| u.name));
        missing.extend(check_uses(&scrape, &format!("panel {title}"), expr));
    }
    assert!(missing.is_empty(), "{}\nexported: {names:?}", missing.join("\n"));
    // The checker must have looked at something: the families the operator needs.
    for n in [
        "recon_companion_worker_last_tick_age_seconds",
        "recon_companion_pushes_total",
        "recon_companion_push_paused",
        "recon_companion_peertube_ready",
        "recon_companion_qdrant_ready",
        "recon_companion_documents",
        "recon_companion_drift_videos",
    ] {
        assert!(used.contains(n), "{n} used by no alert or panel: {used:?}");
    }
}

#[test]
fn the_checker_finds_a_name_that_is_not_exported() {
    let scrape = parse_scrape("# TYPE x counter\nrecon_companion_pushes_total{result=\"ok\"} 3\nrecon_companion_push_paused 0\n# EOF\n");
    assert!(check_uses(&scrape, "t", "rate(recon_companion_pushes_total{result=\"ok\"}[5m])").is_empty());
    assert_eq!(check_uses(&scrape, "t", "recon_companion_pushes{result=\"ok\"}").len(), 1, "the family name without _total is not a series");
    assert_eq!(check_uses(&scrape, "t", "recon_companion_pushes_total{result=\"broken\"}").len(), 1, "an unknown label value");
    assert!(check_uses(&scrape, "t", "recon_companion_push_paused{instance=~\"$instance\"} == 1").is_empty());
}

#[test]
fn alerts_cover_what_an_operator_must_hear() {
    let names: BTreeSet<String> = alerts().into_iter().map(|(n, _)| n).collect();
    for needed in [
        "ReconCompanionWorkerStalled",
        "ReconCompanionPushesFailing",
        "ReconCompanionPushPausedLong",
        "ReconCompanionPeertubeUnreachable",
        "ReconCompanionQdrantUnreachable",
        "ReconCompanionReviewQueueGrowing",
        "ReconCompanionDriftFound",
    ] {
        assert!(names.contains(needed), "no alert {needed}: {names:?}");
    }
}

#[test]
fn alert_rules_pass_promtool() {
    let out = std::process::Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(alerts_file())
        .output()
        .unwrap_or_else(|e| panic!("promtool not runnable ({e}): scripts/setup.sh --test installs it (Debian package prometheus)"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check rules failed:\n{text}");
    let n = alerts().len();
    assert!(text.contains(&format!("SUCCESS: {n} rules found")), "{text}");
}
