//! `explain`'s two concept sources side by side for one document: counts per domain and pass 1 on each.

use super::model::{Decided, SourceComparison, SourceRow, SourceSide};
use crate::assign::{self, Status};
use crate::config::SourceKind;
use crate::context::Env;
use crate::recon::concepts::DocScan;
use crate::recon::source::ConceptSource;
use shared_constants::{COUNT, DOMAINS};

/// Both sources side by side when both are configured (see
/// [`Env::second_source`]); the files side only when a concepts dir is on
/// disk. `configured_scan` is the document's scan from the configured source
/// (not asked twice).
pub(super) fn source_comparison(env: &Env, hash: &str, configured_scan: &DocScan) -> Option<SourceComparison> {
    let other = env.second_source.as_ref()?;
    if !env.concepts_dir.is_dir() {
        return None;
    }
    let other_scan = other.scan_docs(&env.concepts_dir, &[hash.to_string()]).into_iter().next().unwrap_or_default();
    Some(match env.concepts.kind() {
        SourceKind::Qdrant => compare_scans(&other_scan, configured_scan, SourceKind::Qdrant),
        SourceKind::Files => compare_scans(configured_scan, &other_scan, SourceKind::Files),
    })
}

/// The comparison of a files scan and a Qdrant scan of one document.
pub(super) fn compare_scans(files: &DocScan, qdrant: &DocScan, configured: SourceKind) -> SourceComparison {
    let side = |source: &'static str, s: &DocScan, no_counts: Status| {
        let p1 = assign::pass1_as(s.dir_found.then_some(&s.totals), no_counts);
        SourceSide { source, found: s.dir_found, points: s.points, total: s.totals.iter().sum(), pass1: Decided::from(&p1), error: s.failed.clone() }
    };
    let rows: Vec<SourceRow> = (0..COUNT)
        .filter(|&i| files.totals[i] > 0 || qdrant.totals[i] > 0)
        .map(|i| SourceRow { id: DOMAINS[i].id, domain: DOMAINS[i].label, files: files.totals[i], qdrant: qdrant.totals[i] })
        .collect();
    let (f, q) = (side("files", files, ConceptSource::Files.no_counts_status()), side("qdrant", qdrant, Status::NoConcepts));
    SourceComparison {
        configured: configured.as_str(),
        counts_agree: rows.iter().all(|r| r.files == r.qdrant),
        pass1_agrees: f.pass1.status == q.pass1.status && f.pass1.domain == q.pass1.domain,
        rows,
        files: f,
        qdrant: q,
    }
}
