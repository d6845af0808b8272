//! `verify-qdrant` and `compare-sources`: is the Qdrant source usable, and where do the files and Qdrant disagree.

use super::Ctx;
use crate::assign::{self, Outcome, Status};
use crate::config::SourceKind;
use crate::error::Result;
use crate::output;
use crate::recon::db as recondb;
use crate::recon::source::verify_qdrant;
use serde::Serialize;
use std::collections::BTreeMap;

/// Complete PeerTube documents sampled by `verify-qdrant`.
pub const VERIFY_SAMPLE: u64 = 20;

/// `recon-companion verify-qdrant`: exit 0 when usable, 1 when not.
pub fn verify_qdrant_cmd(ctx: &Ctx) -> Result<i32> {
    let c = verify_qdrant(&ctx.cfg.qdrant, &ctx.env.recon_db, &ctx.env.source, VERIFY_SAMPLE);
    if ctx.json {
        output::print_json(&c)?;
    } else {
        println!(
            "{}",
            output::kv(vec![
                ("qdrant", c.url.clone()),
                ("collection", format!("{} ({})", c.collection, if c.collection_found { "found" } else { "NOT FOUND" })),
                ("status", c.status.clone().unwrap_or_else(|| "-".into())),
                ("points", c.points_count.map(|n| n.to_string()).unwrap_or_else(|| "-".into())),
                ("doc_hash payload index", if c.doc_hash_indexed { "yes".to_string() } else { "NO".to_string() }),
                (
                    "write marks (saved counts provable)",
                    match &c.write_marks {
                        Some(m) => format!("yes: last operation {}", crate::recon::saved_counts::marks_text(m)),
                        None => "NO: /telemetry shows none, every run reads afresh".to_string(),
                    },
                ),
                ("sample from recon.db", format!("{} of {} complete PeerTube documents have points", c.sample_found, c.sampled)),
                ("concept_source", ctx.cfg.concept_source.as_str().to_string()),
            ])
        );
        if let Some(a) = &c.index_advice {
            println!("{a}");
        }
        if !c.sample.is_empty() {
            println!("{}", output::table(&["document", "points"], c.sample.iter().take(10).map(|(h, n)| vec![h.clone(), n.to_string()])));
        }
        if let Some(e) = &c.error {
            println!("error: {e}");
        }
        println!("{}", if c.ok { "OK" } else { "FAILED" });
    }
    Ok(if c.ok { 0 } else { 1 })
}

/// How the two sources' pass-1 results for one document relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Diff {
    Agree,
    /// Qdrant has valid labels, the files none (no dir, legacy labels).
    MissingInFiles,
    /// The files have valid labels, Qdrant none.
    MissingInQdrant,
    MissingInBoth,
    DifferentWinner,
    TieInFilesOnly,
    TieInQdrantOnly,
    /// Both tied, on different domains.
    DifferentTie,
    /// The Qdrant request for the document failed.
    QdrantError,
}

impl Diff {
    pub fn as_str(self) -> &'static str {
        match self {
            Diff::Agree => "agree",
            Diff::MissingInFiles => "missing_in_files",
            Diff::MissingInQdrant => "missing_in_qdrant",
            Diff::MissingInBoth => "missing_in_both",
            Diff::DifferentWinner => "different_winner",
            Diff::TieInFilesOnly => "tie_in_files_only",
            Diff::TieInQdrantOnly => "tie_in_qdrant_only",
            Diff::DifferentTie => "different_tie",
            Diff::QdrantError => "qdrant_error",
        }
    }
}

/// Classifies one document from each source's pass-1 outcome.
pub fn classify(files: &Outcome, qdrant: &Outcome, qdrant_failed: bool) -> Diff {
    let has = |o: &Outcome| matches!(o.status, Status::Assigned | Status::TiedPass1);
    match (has(files), has(qdrant)) {
        _ if qdrant_failed => Diff::QdrantError,
        (false, false) => Diff::MissingInBoth,
        (false, true) => Diff::MissingInFiles,
        (true, false) => Diff::MissingInQdrant,
        (true, true) => match (files.status, qdrant.status) {
            (Status::Assigned, Status::Assigned) if files.domain == qdrant.domain => Diff::Agree,
            (Status::Assigned, Status::Assigned) => Diff::DifferentWinner,
            (Status::TiedPass1, Status::TiedPass1) if files.tied == qdrant.tied => Diff::Agree,
            (Status::TiedPass1, Status::TiedPass1) => Diff::DifferentTie,
            (Status::TiedPass1, _) => Diff::TieInFilesOnly,
            _ => Diff::TieInQdrantOnly,
        },
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    pub hash: String,
    pub kind: Diff,
    pub files: String,
    pub qdrant: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Comparison {
    pub selected: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub qdrant_requests: u64,
    pub rows: Vec<CompareRow>,
}

fn describe(o: &Outcome) -> String {
    match (o.status, o.domain_label()) {
        (Status::TiedPass1, _) => format!("tie: {}", o.tied.iter().map(|&i| shared_constants::DOMAINS[i].label).collect::<Vec<_>>().join(" / ")),
        (s, Some(d)) => format!("{s} / {d}"),
        (s, None) => s.to_string(),
    }
}

/// Both sources over the documents a backfill (with the configured source) would select.
pub fn compare(ctx: &Ctx, limit: Option<u64>) -> Result<Comparison> {
    let env = &ctx.env;
    let conn = recondb::open_readonly(&env.recon_db)?;
    let migrated = recondb::feature_columns_present(&conn)?;
    let cands = recondb::backfill_selection(&conn, &env.source, limit, migrated, env.concepts.kind() == SourceKind::Qdrant)?;
    drop(conn);
    let hashes: Vec<String> = cands.into_iter().map(|c| c.hash).collect();
    let files = ctx.cfg.source_of(SourceKind::Files).counts(&env.concepts_dir, &hashes, env.progress, "files")?;
    let qdrant = ctx.cfg.source_of(SourceKind::Qdrant).counts(&env.concepts_dir, &hashes, env.progress, "qdrant")?;
    let mut out = Comparison { selected: hashes.len() as u64, qdrant_requests: qdrant.stats.requests, ..Comparison::default() };
    for ((h, f), q) in hashes.iter().zip(&files.scans).zip(&qdrant.scans) {
        let fo = assign::pass1_as(f.dir_found.then_some(&f.totals), Status::NeedsReprocess);
        let qo = assign::pass1_as(q.dir_found.then_some(&q.totals), Status::NoConcepts);
        let kind = classify(&fo, &qo, q.failed.is_some());
        *out.by_kind.entry(kind.as_str().to_string()).or_default() += 1;
        if kind != Diff::Agree {
            out.rows.push(CompareRow { hash: h.clone(), kind, files: describe(&fo), qdrant: describe(&qo) });
        }
    }
    Ok(out)
}

/// `recon-companion compare-sources`: exit 0 (a report, not a gate).
pub fn compare_sources_cmd(ctx: &Ctx, limit: Option<u64>, show: usize) -> Result<i32> {
    let c = compare(ctx, limit)?;
    if ctx.json {
        output::print_json(&c)?;
        return Ok(0);
    }
    println!("{} documents a backfill would select; {} Qdrant requests", c.selected, c.qdrant_requests);
    println!("{}", output::table(&["files vs qdrant", "documents"], c.by_kind.iter().map(|(k, n)| vec![k.clone(), n.to_string()])));
    if !c.rows.is_empty() {
        println!("first {} of {} differing documents (--json for all):", show.min(c.rows.len()), c.rows.len());
        println!(
            "{}",
            output::table(
                &["document", "kind", "files", "qdrant"],
                c.rows.iter().take(show).map(|r| vec![r.hash.clone(), r.kind.as_str().to_string(), r.files.clone(), r.qdrant.clone()])
            )
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assign::Counts;

    fn o(pairs: &[(usize, u64)], none: Status) -> Outcome {
        let mut c = Counts::default();
        for &(i, n) in pairs {
            c[i] = n;
        }
        assign::pass1_as(Some(&c), none)
    }

    #[test]
    fn kinds() {
        let nr = Status::NeedsReprocess;
        let nc = Status::NoConcepts;
        assert_eq!(classify(&o(&[(1, 2)], nr), &o(&[(1, 3)], nc), false), Diff::Agree);
        assert_eq!(classify(&o(&[(1, 2)], nr), &o(&[(2, 3)], nc), false), Diff::DifferentWinner);
        assert_eq!(classify(&o(&[], nr), &o(&[(2, 3)], nc), false), Diff::MissingInFiles);
        assert_eq!(classify(&o(&[(1, 1)], nr), &o(&[], nc), false), Diff::MissingInQdrant);
        assert_eq!(classify(&o(&[], nr), &o(&[], nc), false), Diff::MissingInBoth);
        assert_eq!(classify(&o(&[(1, 1), (2, 1)], nr), &o(&[(2, 3)], nc), false), Diff::TieInFilesOnly);
        assert_eq!(classify(&o(&[(2, 1)], nr), &o(&[(1, 3), (2, 3)], nc), false), Diff::TieInQdrantOnly);
        assert_eq!(classify(&o(&[(1, 1), (2, 1)], nr), &o(&[(1, 3), (3, 3)], nc), false), Diff::DifferentTie);
        assert_eq!(classify(&o(&[(1, 1)], nr), &assign::pass1(None), true), Diff::QdrantError);
    }
}
