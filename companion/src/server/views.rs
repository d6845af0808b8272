//! Server-rendered HTML: the embedded minijinja templates and the small pure
//! view helpers (bar chart geometry, domain options) they use.

use crate::error::{Error, Result};
use serde::Serialize;
use shared_constants::DOMAINS;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("review.html", include_str!("templates/review.html")),
    ("review_body.html", include_str!("templates/review_body.html")),
    ("item.html", include_str!("templates/item.html")),
    ("runs.html", include_str!("templates/runs.html")),
    ("overrides.html", include_str!("templates/overrides.html")),
    ("run.html", include_str!("templates/run.html")),
    ("rollback.html", include_str!("templates/rollback.html")),
    ("error.html", include_str!("templates/error.html")),
];

/// The template environment (HTML auto-escaping on: every template ends in .html).
pub fn templates() -> Result<minijinja::Environment<'static>> {
    let mut env = minijinja::Environment::new();
    for (name, src) in TEMPLATES {
        env.add_template(name, src).map_err(|e| Error::Other(format!("template {name}: {e}")))?;
    }
    env.add_filter("pretty_json", |v: minijinja::Value| -> String { serde_json::to_string_pretty(&v).unwrap_or_default() });
    Ok(env)
}

pub fn render(env: &minijinja::Environment<'static>, name: &str, ctx: minijinja::Value) -> Result<String> {
    env.get_template(name).and_then(|t| t.render(ctx)).map_err(|e| Error::Other(format!("rendering {name}: {e:#}")))
}

/// The `<style>` block of base.html, the only inline code the pages carry.
fn inline_style() -> &'static str {
    let base = include_str!("templates/base.html");
    let start = base.find("<style>").map(|i| i + "<style>".len()).unwrap_or(0);
    let end = base[start..].find("</style>").map(|i| start + i).unwrap_or(start);
    &base[start..end]
}

/// The pages' Content-Security-Policy: nothing but the hashed inline style and
/// same-origin images and forms; no script at all, and no framing.
pub fn content_security_policy() -> String {
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(inline_style().as_bytes()));
    format!("default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

/// One bar of the domain distribution chart.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bar {
    pub label: String,
    pub count: u64,
    pub y: u32,
    pub width: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Chart {
    pub bars: Vec<Bar>,
    pub height: u32,
    pub label_width: u32,
    pub bar_max: u32,
}

pub const BAR_HEIGHT: u32 = 20;
const LABEL_WIDTH: u32 = 250;
const BAR_MAX: u32 = 420;

/// Horizontal bars, widths proportional to the largest count (a non-zero count
/// always gets at least one pixel, so a small domain stays visible).
pub fn chart(by_domain: &[(String, u64)]) -> Chart {
    let max = by_domain.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let bars = by_domain
        .iter()
        .enumerate()
        .map(|(i, (label, n))| {
            let width = if max == 0 || *n == 0 { 0 } else { ((*n as f64 / max as f64) * BAR_MAX as f64).round().max(1.0) as u32 };
            Bar { label: label.clone(), count: *n, y: i as u32 * BAR_HEIGHT, width }
        })
        .collect::<Vec<_>>();
    Chart { height: bars.len() as u32 * BAR_HEIGHT, bars, label_width: LABEL_WIDTH, bar_max: BAR_MAX }
}

/// The 18 domains for select boxes: (id, label).
pub fn domain_options() -> Vec<(u16, &'static str)> {
    DOMAINS.iter().map(|d| (d.id, d.label)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_scales_to_the_largest() {
        let c = chart(&[("A".into(), 1000), ("B".into(), 500), ("C".into(), 1), ("D".into(), 0)]);
        assert_eq!(c.bars.iter().map(|b| b.width).collect::<Vec<_>>(), vec![420, 210, 1, 0]);
        assert_eq!(c.bars[2].y, 40);
        assert_eq!(c.height, 80);
        assert!(chart(&[]).bars.is_empty());
    }

    #[test]
    fn csp_hashes_the_inline_style_and_allows_no_script() {
        let csp = content_security_policy();
        assert!(inline_style().contains("body{"), "{}", inline_style());
        assert!(csp.contains("style-src 'sha256-") && csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "{csp}");
        // Inline styles in attributes would be blocked: no template has one.
        for (name, src) in TEMPLATES {
            assert!(!src.contains(" style=") && !src.contains("<script"), "{name} carries inline style or script");
        }
    }

    #[test]
    fn every_template_parses_and_escapes() {
        let env = templates().unwrap();
        let out = render(
            &env,
            "error.html",
            minijinja::Value::from(minijinja::value::Serde(
                serde_json::json!({ "title": "Oops", "message": "<script>x</script>", "status": 400, "principal": "operator", "csrf": "", "flash": [] }),
            )),
        )
        .unwrap();
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert!(!out.contains("<script>x"), "{out}");
    }
}
