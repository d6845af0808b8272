//! The demo's Qdrant side: `qdrant-points.jsonl`, one RECON concept point per line, matching the generated concept files.
//!
//! Documents whose files carry valid labels get one point per counted label
//! (so both sources agree on them), plus points that count nothing (legacy
//! labels, no domain). Complete documents without usable files — the
//! operator's situation, where Qdrant holds what the disk lost — get points of
//! their own for 9 in 10 of them (the rest have none: `no_concepts`). Points of
//! another RECON source (PDFs) share the collection, as in production.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use shared_constants::DOMAINS;

use crate::error::DbContext;
use crate::error::{Error, Result};
use crate::recon::concepts;

pub const POINTS_FILE: &str = "qdrant-points.jsonl";

#[derive(Debug, Clone, Default, Serialize)]
pub struct PointsSummary {
    pub path: String,
    pub points: u64,
    pub documents: u64,
    /// Complete documents whose points exist only in Qdrant (no usable files).
    pub qdrant_only: u64,
    pub other_source_points: u64,
}

/// A point id as RECON makes them: an unsigned integer from a digest of
/// `{doc_hash}:{page}:{index}` (RECON takes md5's first 15 hex digits; a
/// sha256's first 15 serve the same purpose here).
pub fn point_id(doc: &str, page: u64, index: u64) -> u64 {
    let d = Sha256::digest(format!("{doc}:{page}:{index}").as_bytes());
    d[..8].iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) >> 4
}

fn seed_of(hash: &str) -> u64 {
    point_id(hash, u64::MAX, u64::MAX)
}

/// Writes `{dir}/qdrant-points.jsonl` for the demo data dir `dir` (recon.db + concepts/).
pub fn write_points(dir: &Path, peertube_source: &str) -> Result<PointsSummary> {
    let conn = crate::recon::db::open_readonly(&dir.join("recon.db"))?;
    let mut stmt = conn
        .prepare("SELECT c.hash, d.status FROM catalogue c LEFT JOIN documents d ON d.hash = c.hash WHERE c.source = ?1 ORDER BY c.hash")
        .ctx("demo::qdrant::write_points")?;
    let rows: Vec<(String, Option<String>)> = stmt
        .query_map([peertube_source], |r| Ok((r.get(0)?, r.get(1)?)))
        .ctx("demo::qdrant::write_points")?
        .collect::<std::result::Result<_, _>>()
        .ctx("demo::qdrant::write_points")?;
    let path = dir.join(POINTS_FILE);
    let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
    let mut out = std::io::BufWriter::new(file);
    let mut s = PointsSummary { path: path.display().to_string(), ..PointsSummary::default() };
    let hashes: Vec<String> = rows.iter().map(|(h, _)| h.clone()).collect();
    let scans = concepts::scan_docs(&dir.join("concepts"), &hashes);
    let mut line = |id: u64, payload: serde_json::Value, s: &mut PointsSummary| -> Result<()> {
        s.points += 1;
        writeln!(out, "{}", json!({"id": id, "payload": payload})).map_err(|e| Error::io(&path, e))
    };
    for ((hash, status), scan) in rows.iter().zip(&scans) {
        let seed = seed_of(hash);
        let mut labels: Vec<&str> = Vec::new();
        for (i, n) in scan.totals.iter().enumerate() {
            labels.extend(std::iter::repeat_n(DOMAINS[i].label, *n as usize));
        }
        if labels.is_empty() && status.as_deref() == Some("complete") && !seed.is_multiple_of(10) {
            // Files missing or legacy-only: Qdrant still has the concepts.
            let home = DOMAINS[(seed % 18) as usize].label;
            let other = DOMAINS[((seed / 18) % 18) as usize].label;
            let n = 3 + (seed / 324 % 6) as usize;
            labels.extend(std::iter::repeat_n(home, n));
            labels.extend(std::iter::repeat_n(other, (seed / 1944 % 3) as usize));
            s.qdrant_only += 1;
        }
        if labels.is_empty() && !seed.is_multiple_of(3) {
            continue;
        }
        s.documents += 1;
        let mut idx = 0u64;
        let mut it = labels.into_iter().peekable();
        while let Some(l) = it.next() {
            idx += 1;
            // Every 7th concept holds a list of two labels: each counts.
            let domain = match it.peek() {
                Some(next) if idx.is_multiple_of(7) => {
                    let v = json!([l, next]);
                    it.next();
                    v
                }
                _ => json!(l),
            };
            line(
                point_id(hash, idx / 6, idx),
                json!({"doc_hash": hash, "domain": domain, "source_type": "transcript", "title": format!("concept {idx}")}),
                &mut s,
            )?;
        }
        // Points that count nothing: a legacy label, and no domain at all.
        if seed.is_multiple_of(4) {
            line(point_id(hash, 999, 1), json!({"doc_hash": hash, "domain": "Science & Technology", "source_type": "transcript"}), &mut s)?;
        }
        if seed.is_multiple_of(5) {
            line(point_id(hash, 999, 2), json!({"doc_hash": hash, "source_type": "transcript"}), &mut s)?;
        }
        // Another RECON source in the same collection: one PDF per 4 videos.
        if seed % 4 == 1 {
            let pdf = format!("{:032x}", seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for k in 0..8 {
                line(point_id(&pdf, 0, k), json!({"doc_hash": pdf, "domain": DOMAINS[(k % 18) as usize].label, "source_type": "pdf"}), &mut s)?;
                s.other_source_points += 1;
            }
        }
    }
    out.flush().map_err(|e| Error::io(&path, e))?;
    Ok(s)
}
