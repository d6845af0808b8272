//! Writing the demo's recon.db: RECON's schema, the planned catalogue and
//! documents rows, a few rows in RECON's other tables, and the summary counts.

use super::plan::{Doc, Kind, Plan, Reprocess, Shape};
use super::{DemoSpec, DemoSummary};
use crate::error::{DbContext, Result};
use rusqlite::{params, Connection};
use std::path::Path;

pub(super) fn write_db(path: &Path, spec: &DemoSpec, plan: &Plan) -> Result<DemoSummary> {
    let mut conn = Connection::open(path).ctx("creating the demo database").map_err(|e| e.in_db(path))?;
    conn.pragma_update(None, "journal_mode", "WAL").ctx_in(&conn, "switching to WAL", None)?;
    conn.execute_batch(crate::recon::schema::RECON_SCHEMA).ctx_in(&conn, "creating RECON's schema", None)?;
    let tx = conn.transaction().ctx("starting the demo transaction").map_err(|e| e.in_db(path))?;
    let mut s = DemoSummary::default();
    {
        let mut cat = tx
            .prepare(
                "INSERT INTO catalogue (hash, filename, path, size_bytes, source, category, status, discovered_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .ctx_in(&tx, "preparing catalogue insert", None)?;
        let mut doc = tx
            .prepare(
                "INSERT INTO documents (hash, filename, path, size_bytes, page_count, book_title, book_author, collection, status, \
                 pages_extracted, concepts_extracted, vectors_inserted, discovered_at, extracted_at, enriched_at, embedded_at, \
                 error_message, retry_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )
            .ctx_in(&tx, "preparing documents insert", None)?;
        for d in &plan.docs {
            let (source, collection, author) = match d.kind {
                Kind::Stream => (spec.source.as_str(), "peertube", d.category.as_deref()),
                Kind::Library => ("library", "survival", Some("Various")),
            };
            let cat_status = match d.status {
                "complete" => "complete",
                "queued" => "queued",
                _ => "processing",
            };
            cat.execute(params![d.hash, d.title, d.path, d.size_bytes, source, d.category, cat_status, d.discovered_at]).ctx_in(
                &tx,
                "inserting catalogue row",
                Some(&d.hash),
            )?;
            let done = d.status == "complete";
            let later = |h: i64| {
                chrono::NaiveDateTime::parse_from_str(&d.discovered_at, "%Y-%m-%d %H:%M:%S")
                    .map(|t| (t + chrono::Duration::hours(h)).format("%Y-%m-%d %H:%M:%S").to_string())
                    .ok()
            };
            let concepts = match d.shape {
                Shape::Reprocess(Reprocess::NoDir) => 0,
                _ => 6,
            };
            let (error, retries) = if d.status == "failed" { (Some("enrich: LLM request timed out"), 3) } else { (None, 0) };
            doc.execute(params![
                d.hash,
                d.title,
                d.path,
                d.size_bytes,
                1,
                d.title,
                author,
                collection,
                d.status,
                1,
                if done { concepts } else { 0 },
                d.discovered_at,
                if d.status == "queued" { None } else { later(1) },
                if done { later(2) } else { None },
                if done { later(3) } else { None },
                error,
                retries,
            ])
            .ctx_in(&tx, "inserting documents row", Some(&d.hash))?;
        }
        for (hash, channel, path) in &plan.catalogue_only {
            cat.execute(params![hash, "untitled upload", path, 0, spec.source, channel, "catalogued", "2026-01-01 00:00:00"]).ctx_in(
                &tx,
                "inserting catalogue row",
                Some(hash),
            )?;
        }
        let mut page = tx.prepare("INSERT INTO pages (hash, page_number, text) VALUES (?1, ?2, ?3)").ctx_in(&tx, "preparing pages insert", None)?;
        let mut log =
            tx.prepare("INSERT INTO processing_log (hash, stage, message) VALUES (?1, ?2, ?3)").ctx_in(&tx, "preparing processing_log insert", None)?;
        for d in plan.docs.iter().filter(|d| d.kind == Kind::Library).take(5) {
            for p in 1..=3 {
                page.execute(params![d.hash, p, format!("page {p} of {}", d.title)]).ctx_in(&tx, "inserting pages row", Some(&d.hash))?;
            }
            log.execute(params![d.hash, "extract", "extracted 3 pages"]).ctx_in(&tx, "inserting processing_log row", Some(&d.hash))?;
        }
        tx.execute_batch("INSERT INTO settings (key, value) VALUES ('schema_version', '14'), ('enrich_model', 'qwen2.5-14b-instruct'), ('demo', 'true');")
            .ctx_in(&tx, "inserting settings rows", None)?;
    }
    tx.commit().ctx_in(&conn, "committing the demo rows", None)?;

    let stream: Vec<&Doc> = plan.docs.iter().filter(|d| d.kind == Kind::Stream).collect();
    s.docs = plan.docs.len() as u64;
    s.stream_docs = stream.len() as u64;
    s.non_stream_docs = s.docs - s.stream_docs;
    s.catalogue_only = plan.catalogue_only.len() as u64;
    s.channels = plan.channels.iter().filter(|c| c.name.is_some()).count() as u64;
    s.null_category_docs = stream.iter().filter(|d| d.category.is_none()).count() as u64;
    s.transcript_size = plan.channels.iter().filter(|c| c.name.as_deref() == Some("Transcript")).map(|c| c.size as u64).sum();
    for d in stream.iter().filter(|d| d.status == "complete") {
        s.complete += 1;
        match d.shape {
            Shape::Clear { .. } => s.expected_assigned += 1,
            Shape::Tie { .. } => s.engineered_ties += 1,
            Shape::Reprocess(_) => s.engineered_reprocess += 1,
        }
    }
    s.concept_bearing = s.complete - s.engineered_reprocess;
    Ok(s)
}
