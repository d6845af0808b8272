//! The check before any push (and `verify-peertube`): PeerTube lists all 18
//! categories with exactly our labels, and the plugin's route answers our
//! fingerprint. Comparisons are pure; only [`run`] talks to PeerTube.

use crate::peertube::api::{ApiClient, ApiError, PLUGIN_ROUTE};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// What PeerTube holds, compared with our table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Preflight {
    pub url: String,
    /// One line per problem; empty = OK.
    pub problems: Vec<String>,
    pub categories_ok: usize,
    pub plugin_fingerprint: Option<String>,
    pub plugin_version: Option<String>,
    pub expected_fingerprint: String,
}

impl Preflight {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Problems with `GET /api/v1/videos/categories` (id string → label).
pub fn check_categories(live: &BTreeMap<String, String>) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let mut ok = 0;
    let mut missing = Vec::new();
    for d in shared_constants::all() {
        match live.get(&d.id.to_string()) {
            None => missing.push(d.id.to_string()),
            Some(l) if l == d.label => ok += 1,
            Some(l) => problems.push(format!("category {} is {:?} in PeerTube, expected {:?}", d.id, l, d.label)),
        }
    }
    if !missing.is_empty() {
        problems.insert(0, format!("PeerTube lacks categories {} (is peertube-plugin-recon-domains installed and enabled?)", missing.join(", ")));
    }
    (ok, problems)
}

/// Problems with the plugin route's `{version, fingerprint, categories}`.
pub fn check_plugin(answer: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let expected = shared_constants::fingerprint();
    match answer.get("fingerprint").and_then(Value::as_str) {
        Some(f) if f == expected => {}
        Some(f) => problems.push(format!(
            "plugin taxonomy fingerprint {f} differs from ours {expected} (plugin and companion built from different tables: update one of them)"
        )),
        None => problems.push("plugin route answered no fingerprint".to_string()),
    }
    if let Some(cats) = answer.get("categories").and_then(Value::as_array) {
        let theirs: BTreeMap<i64, &str> = cats.iter().filter_map(|c| Some((c.get("id")?.as_i64()?, c.get("label")?.as_str()?))).collect();
        for d in shared_constants::all() {
            match theirs.get(&i64::from(d.id)) {
                Some(l) if *l == d.label => {}
                Some(l) => problems.push(format!("plugin's category {} is {:?}, expected {:?}", d.id, l, d.label)),
                None => problems.push(format!("plugin's table lacks category {}", d.id)),
            }
        }
    }
    if let Some(refused) = answer.get("refused").and_then(Value::as_array) {
        if !refused.is_empty() {
            problems.push(format!("PeerTube refused the plugin's categories {refused:?} (ids already taken by another plugin)"));
        }
    }
    problems
}

/// Runs both checks. `Err` when PeerTube cannot be reached at all: never a silent pass.
pub async fn run(client: &ApiClient) -> Result<Preflight, ApiError> {
    let mut p = Preflight { url: client.base_url().to_string(), expected_fingerprint: shared_constants::fingerprint(), ..Default::default() };
    let live = client.categories().await?;
    let (ok, problems) = check_categories(&live);
    p.categories_ok = ok;
    p.problems.extend(problems);
    match client.get_public(PLUGIN_ROUTE).await {
        Ok(v) => {
            p.plugin_fingerprint = v.get("fingerprint").and_then(Value::as_str).map(str::to_string);
            p.plugin_version = v.get("version").and_then(Value::as_str).map(str::to_string);
            p.problems.extend(check_plugin(&v));
        }
        Err(ApiError::NotFound(_)) => {
            p.problems.push(format!("plugin route {PLUGIN_ROUTE} not found: peertube-plugin-recon-domains is not installed (or too old)"))
        }
        Err(e @ ApiError::Unavailable(_)) => return Err(e),
        Err(e) => p.problems.push(format!("plugin route {PLUGIN_ROUTE}: {e}")),
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours() -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = (1..=18).map(|i| (i.to_string(), format!("Builtin {i}"))).collect();
        for d in shared_constants::all() {
            m.insert(d.id.to_string(), d.label.to_string());
        }
        m
    }

    #[test]
    fn categories_exact_match_passes() {
        let (ok, problems) = check_categories(&ours());
        assert_eq!(ok, 18);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn missing_and_different_are_named() {
        let mut m = ours();
        m.remove("105");
        m.remove("117");
        m.insert("106".into(), "Medicine".into());
        let (ok, problems) = check_categories(&m);
        assert_eq!(ok, 15);
        assert!(problems[0].contains("105, 117"), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("106") && p.contains("Medicine") && p.contains("Medical")), "{problems:?}");
        // Built-ins only (plugin missing): every id is named.
        let builtins: BTreeMap<String, String> = (1..=18).map(|i| (i.to_string(), "x".into())).collect();
        let (ok, problems) = check_categories(&builtins);
        assert_eq!(ok, 0);
        assert!(problems[0].contains("100") && problems[0].contains("plugin"), "{problems:?}");
    }

    #[test]
    fn plugin_fingerprint() {
        let cats: Vec<Value> = shared_constants::all().map(|d| json!({"id": d.id, "label": d.label})).collect();
        let good = json!({"version": "1", "fingerprint": shared_constants::fingerprint(), "categories": cats, "refused": []});
        assert!(check_plugin(&good).is_empty());
        let bad = json!({"version": "1", "fingerprint": "0000000000000000", "categories": cats});
        let p = check_plugin(&bad);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("0000000000000000"));
        assert!(!check_plugin(&json!({})).is_empty());
        let refused = json!({"fingerprint": shared_constants::fingerprint(), "refused": [105]});
        assert!(check_plugin(&refused)[0].contains("105"));
    }
}
