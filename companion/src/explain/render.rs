//! The text an operator reads: `explain` and `spot-check` without `--json`.

use super::compute::join_labels;
use super::model::{DomainCount, Explanation, SourceComparison, SourceSide, SpotCheck};
use super::spot_check::NARROW_RULE;
use crate::assign::Rule;
use crate::output::{self, pct};

fn opt(s: &Option<String>) -> String {
    // An em dash: output.rs right-aligns a bare "-" as if it were a number.
    s.clone().unwrap_or_else(|| "—".into())
}

fn short_text(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max.saturating_sub(1)).collect::<String>())
    }
}

fn counts_text(list: &[DomainCount]) -> String {
    list.iter().map(|d| format!("{} {}", d.domain, d.count)).collect::<Vec<_>>().join(", ")
}

/// The explanation as an operator reads it.
pub fn render_text(e: &Explanation) -> String {
    let mut out = String::new();
    let push = |out: &mut String, s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    push(&mut out, &format!("Document {}", e.hash));
    push(
        &mut out,
        &output::kv([
            ("title", opt(&e.title)),
            ("channel", opt(&e.channel)),
            ("source", opt(&e.source)),
            ("video", opt(&e.video_url)),
            ("document status", opt(&e.document_status)),
            ("stored domain", opt(&e.stored.domain)),
            ("stored status", if e.migrated { opt(&e.stored.status) } else { "- (recon.db not migrated)".into() }),
            ("assigned at", opt(&e.stored.assigned_at)),
            ("pushed at", opt(&e.stored.pushed_at)),
            (
                "concept dir",
                match (&e.concept_dir, e.concept_dir_found) {
                    (Some(d), true) => d.clone(),
                    (Some(d), false) => format!("{d} (missing)"),
                    (None, _) => "- (hash is not one safe path component)".into(),
                },
            ),
        ]),
    );
    if !e.windows.is_empty() {
        push(&mut out, "\nWindows (valid-domain counts)");
        push(
            &mut out,
            &output::table(
                &["file", "items", "counted", "domains", "skipped items"],
                e.windows.iter().map(|w| {
                    let skipped = w.non_object_items + w.no_valid_domain_items;
                    vec![
                        w.file.clone(),
                        w.items.to_string(),
                        w.counted.to_string(),
                        if w.counts.is_empty() { "-".into() } else { counts_text(&w.counts) },
                        if skipped == 0 { String::new() } else { skipped.to_string() },
                    ]
                }),
            ),
        );
    }
    if !e.skipped_files.is_empty() {
        push(&mut out, "\nSkipped files");
        push(&mut out, &output::table(&["file", "why", "detail"], e.skipped_files.iter().map(|s| vec![s.file.clone(), s.kind.to_string(), s.reason.clone()])));
    }
    if e.skipped_non_object_items + e.skipped_no_valid_domain_items > 0 {
        push(
            &mut out,
            &format!("Skipped items in counted files: {} not objects, {} without a valid domain.", e.skipped_non_object_items, e.skipped_no_valid_domain_items),
        );
    }
    push(&mut out, "\nTotals");
    if e.totals.is_empty() {
        push(&mut out, "no valid domain in any window");
    } else {
        let total = e.total_valid.max(1) as f64;
        push(
            &mut out,
            &output::table(
                &["domain", "id", "count", "share"],
                e.totals.iter().map(|d| vec![d.domain.to_string(), d.id.to_string(), d.count.to_string(), pct(d.count as f64 * 100.0 / total)]),
            ),
        );
    }
    if let Some(t) = &e.tie {
        push(&mut out, &format!("\nTie: {} at {} each", join_labels(&t.tied), t.tied_count));
        let mut rows = vec![
            ("channel", opt(&t.channel)),
            ("channel size", t.channel_size.to_string()),
            ("mega-channel", t.mega_reason.clone().map(|r| format!("yes: {r}")).unwrap_or_else(|| "no".into())),
        ];
        if let Some(cc) = &t.channel_counts {
            rows.push(("channel counts (others)", counts_text(cc)));
            rows.push(("mates counted", t.mates_counted.to_string()));
        }
        push(&mut out, &output::kv(rows));
        if !t.top_contributors.is_empty() {
            push(&mut out, "Top contributing channel-mates");
            push(
                &mut out,
                &output::table(
                    &["hash", "title", "tied-domain counts"],
                    t.top_contributors.iter().map(|c| vec![c.hash.clone(), short_text(&c.title.clone().unwrap_or_default(), 40), counts_text(&c.counts)]),
                ),
            );
        }
    }
    if let Some(c) = &e.sources {
        out.push_str(&sources_text(c));
    }
    push(&mut out, "\nDecision");
    push(&mut out, &format!("rule: {}", rule_name(e.rule)));
    push(&mut out, &e.reason);
    push(&mut out, &format!("\n{}", e.staleness.message));
    if !e.history.is_empty() {
        push(&mut out, "\nHistory (journal, newest first)");
        push(
            &mut out,
            &output::table(
                &["at", "run", "state", "from", "to"],
                e.history.iter().map(|h| {
                    let side = |s: &Option<String>, d: &Option<String>| match (s, d) {
                        (None, None) => "-".to_string(),
                        (s, None) => opt(s),
                        (s, Some(d)) => format!("{} / {d}", opt(s)),
                    };
                    vec![h.at.clone(), h.run_id.clone(), h.state.clone(), side(&h.from_status, &h.from_domain), side(&h.to_status, &h.to_domain)]
                }),
            ),
        );
    }
    out
}

/// Both sources' counts side by side, then each one's pass-1 outcome.
fn sources_text(c: &SourceComparison) -> String {
    let mut out = format!("\nSources (configured: {})\n", c.configured);
    if c.rows.is_empty() {
        out.push_str("no valid domain in either source\n");
    } else {
        out.push_str(&output::table(
            &["domain", "files", "qdrant"],
            c.rows.iter().map(|r| {
                let mark = if r.files == r.qdrant { "" } else { " ≠" };
                vec![format!("{}{mark}", r.domain), r.files.to_string(), r.qdrant.to_string()]
            }),
        ));
        out.push('\n');
    }
    let side = |s: &SourceSide| {
        let found = match (s.source, s.found) {
            ("qdrant", true) => format!("{} point(s)", s.points),
            ("qdrant", false) => format!("request failed: {}", s.error.as_deref().unwrap_or("unknown error")),
            (_, true) => "concept dir found".to_string(),
            (_, false) => "no concept dir".to_string(),
        };
        let d = s.pass1.domain.map(|d| format!(" / {d}")).unwrap_or_default();
        format!("{}{d} ({} valid label(s); {found})", s.pass1.status, s.total)
    };
    out.push_str(&output::kv([("pass 1 on files", side(&c.files)), ("pass 1 on qdrant", side(&c.qdrant))]));
    out.push('\n');
    out.push_str(if c.counts_agree {
        "The sources agree.\n"
    } else if c.pass1_agrees {
        "The counts differ, the pass-1 outcome does not.\n"
    } else {
        "The sources disagree on the pass-1 outcome.\n"
    });
    out
}

fn rule_name(r: Rule) -> &'static str {
    match r {
        Rule::NoValidDomain => "no valid domain",
        Rule::ClearWinner => "clear winner",
        Rule::Tie => "tie (waiting for the tiebreaker)",
        Rule::Channel => "tie → channel",
        Rule::MegaChannel => "tie → mega-channel",
        Rule::AlphabeticalFallback => "tie → alphabetical fallback",
    }
}

/// The spot check as an operator reads it.
pub fn render_spot_text(s: &SpotCheck) -> String {
    let mut out = String::new();
    out.push_str(&format!("spot-check: {} of {} {} document(s), seed {} (repeat with --seed {})\n", s.verdicts.len(), s.available, s.status, s.seed, s.seed));
    if s.verdicts.is_empty() {
        out.push_str(&format!("no documents with status {}\n", s.status));
        return out;
    }
    out.push_str(&output::table(
        &["hash", "domain", "share", "margin", "runner-up", "channel lead", "verdict", "stale", "title"],
        s.verdicts.iter().map(|v| {
            vec![
                v.hash.clone(),
                opt(&v.domain),
                v.share.map(|x| pct(x * 100.0)).unwrap_or_else(|| "-".into()),
                v.margin.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
                v.runner_up.unwrap_or("-").to_string(),
                v.channel_margin.map(|m| m.to_string()).unwrap_or_default(),
                v.class.as_str().to_string(),
                if v.stale { "STALE".into() } else { String::new() },
                short_text(&v.title.clone().unwrap_or_default(), 40),
            ]
        }),
    ));
    out.push('\n');
    let sm = &s.summary;
    out.push_str(&format!("summary: {} clear, {} narrow, {} no domain, {} stale (of {})\n", sm.clear, sm.narrow, sm.no_domain, sm.stale, sm.sampled));
    out.push_str(&format!("{NARROW_RULE}\n"));
    for v in s.verdicts.iter().filter(|v| v.stale) {
        out.push_str(&format!("{}: {}\n", v.hash, v.note));
    }
    if sm.stale > 0 {
        out.push_str("stale documents: run `recon-companion explain HASH` for the details\n");
    }
    out
}
