//! What `explain` and `spot-check` report: the serializable structs, shared by
//! the CLI's `--json`, the dashboard and the text renderer.

use crate::assign::{Outcome, Rule, Status};
use serde::Serialize;

/// One domain and a count (count may be 0 where a tied domain has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainCount {
    pub id: u16,
    pub domain: &'static str,
    pub count: u64,
}

/// What recon.db holds for the document (the four feature columns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stored {
    pub domain: Option<String>,
    /// `recon_domain_status` verbatim (the database's own spelling), so a value
    /// that is not one of `assign::Status` still shows.
    pub status: Option<String>,
    pub assigned_at: Option<String>,
    pub pushed_at: Option<String>,
}

/// A window file that counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowCounts {
    pub file: String,
    /// Elements of the file's top-level array.
    pub items: u64,
    /// Valid-domain counts, non-zero only, in id order.
    pub counts: Vec<DomainCount>,
    /// Sum of `counts`.
    pub counted: u64,
    pub non_object_items: u64,
    /// Objects with no valid domain (missing, legacy label, not a string).
    pub no_valid_domain_items: u64,
}

/// A window file that contributed nothing, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedFile {
    /// Empty when the directory listing itself failed.
    pub file: String,
    /// `unreadable`, `not_utf8`, `malformed` or `not_array`.
    pub kind: &'static str,
    pub reason: String,
}

/// A rule's result in plain terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decided {
    pub status: Status,
    pub domain: Option<&'static str>,
    pub rule: Rule,
}

impl From<&Outcome> for Decided {
    fn from(o: &Outcome) -> Self {
        Decided { status: o.status, domain: o.domain_label(), rule: o.rule }
    }
}

/// A channel-mate and its counts for the tied domains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contributor {
    pub hash: String,
    pub title: Option<String>,
    /// Its counts for the tied domains (id order, zeros kept).
    pub counts: Vec<DomainCount>,
    /// Sum of `counts`.
    pub total: u64,
}

/// How the channel tiebreaker saw a tied document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TieDetail {
    /// The domains sharing the document's highest count (id order).
    pub tied: Vec<&'static str>,
    /// Their shared count in the document.
    pub tied_count: u64,
    /// `catalogue.category`; None: the document has no channel.
    pub channel: Option<String>,
    /// PeerTube catalogue rows in the channel (the document included).
    pub channel_size: u64,
    pub mega: bool,
    /// Why the channel is a mega-channel (None when it is not).
    pub mega_reason: Option<String>,
    /// Summed counts of the channel's *other* documents for the tied domains,
    /// as the tiebreaker computes them; None for a mega-channel or no channel
    /// (the tiebreaker does not look at them).
    pub channel_counts: Option<Vec<DomainCount>>,
    /// How far the chosen domain leads the other tied domains in the channel
    /// (only when the channel decided).
    pub channel_margin: Option<u64>,
    /// Channel-mates whose files were counted.
    pub mates_counted: u64,
    /// The channel-mates that contributed most to the tied domains (at most 5).
    pub top_contributors: Vec<Contributor>,
}

/// One journal entry that changed the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub run_id: String,
    pub at: String,
    pub state: String,
    /// Statuses as the journal recorded them (the database's spelling).
    pub from_status: Option<String>,
    pub from_domain: Option<String>,
    pub to_status: Option<String>,
    pub to_domain: Option<String>,
}

/// Whether the stored result still matches the files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Staleness {
    pub stale: bool,
    /// `pass1` or `tiebreaker`: which recomputation the stored result is held
    /// against; None when it is not compared (nothing stored, manual choice).
    pub compared_with: Option<&'static str>,
    /// One plain sentence for the operator.
    pub message: String,
}

/// Everything `explain` knows about one document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub hash: String,
    /// `documents.book_title`, else the catalogue's (or documents') filename.
    pub title: Option<String>,
    /// `catalogue.category`.
    pub channel: Option<String>,
    /// `catalogue.source`.
    pub source: Option<String>,
    /// `catalogue.path` (the PeerTube video URL for stream documents).
    pub video_url: Option<String>,
    /// `documents.status` (RECON's pipeline status).
    pub document_status: Option<String>,
    pub in_documents: bool,
    pub in_catalogue: bool,
    /// False when recon.db lacks the feature's columns (nothing is stored yet).
    pub migrated: bool,
    pub stored: Stored,
    /// None when the hash is not one safe path component (it is then never used as a path).
    pub concept_dir: Option<String>,
    pub concept_dir_found: bool,
    /// Window files that counted, in file-name order.
    pub windows: Vec<WindowCounts>,
    pub skipped_files: Vec<SkippedFile>,
    /// Items skipped inside files that counted.
    pub skipped_non_object_items: u64,
    pub skipped_no_valid_domain_items: u64,
    /// Valid-domain counts over all windows, non-zero only, highest first.
    pub totals: Vec<DomainCount>,
    pub total_valid: u64,
    /// Pass 1 on today's files.
    pub pass1: Decided,
    /// What backfill then tiebreaker would store today.
    pub outcome: Decided,
    /// The rule that decides `outcome`.
    pub rule: Rule,
    /// The decision in one or two plain sentences.
    pub reason: String,
    /// Set when the files give a tie.
    pub tie: Option<TieDetail>,
    pub stale: bool,
    pub staleness: Staleness,
    /// Latest journaled changes to the document's row, newest first.
    pub history: Vec<HistoryEntry>,
    /// Both sources' counts side by side, when both are configured (the
    /// Qdrant source and an existing concepts dir); None otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<SourceComparison>,
}

/// One domain's count in each source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRow {
    pub id: u16,
    pub domain: &'static str,
    pub files: u64,
    pub qdrant: u64,
}

/// What one source answered for the document, and pass 1 on its counts alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceSide {
    /// `files` or `qdrant`.
    pub source: &'static str,
    /// Files: the concept dir exists; Qdrant: the request succeeded.
    pub found: bool,
    /// Qdrant: points whose `doc_hash` is the document's (0 for files).
    pub points: u64,
    /// Valid-label count over all domains.
    pub total: u64,
    pub pass1: Decided,
    /// Why the source could not answer (a failed Qdrant request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The files and Qdrant counts of one document, side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceComparison {
    /// The configured source, the one `pass1` and `outcome` above come from.
    pub configured: &'static str,
    /// Domains with a non-zero count in either source, in id order.
    pub rows: Vec<SourceRow>,
    pub files: SourceSide,
    pub qdrant: SourceSide,
    /// Same counts in every domain.
    pub counts_agree: bool,
    /// Same pass-1 status and domain.
    pub pass1_agrees: bool,
}

/// How convincing a stored domain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Clear,
    Narrow,
    /// No stored domain (needs_reprocess, tied_pass_1) or not one of the 18 labels.
    NoDomain,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Clear => "clear",
            Class::Narrow => "narrow",
            Class::NoDomain => "no domain",
        }
    }
}

/// One sampled document's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub hash: String,
    pub title: Option<String>,
    pub channel: Option<String>,
    /// The stored status, verbatim (see [`Stored::status`]).
    pub status: Option<String>,
    /// The stored domain.
    pub domain: Option<String>,
    /// Its share of the document's valid-domain concepts (files as they are now).
    pub share: Option<f64>,
    /// Its lead over the runner-up, in concepts (0 when it does not lead).
    pub margin: Option<u64>,
    pub runner_up: Option<&'static str>,
    pub total_valid: u64,
    /// For ties: the stored domain's lead over the other tied domains in the channel's counts.
    pub channel_margin: Option<u64>,
    pub class: Class,
    pub stale: bool,
    pub note: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SpotSummary {
    pub sampled: u64,
    pub clear: u64,
    pub narrow: u64,
    pub no_domain: u64,
    pub stale: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpotCheck {
    /// Serialized as the database spells it (`tied_pass_2`).
    pub status: Status,
    /// Documents with that status.
    pub available: u64,
    pub requested: usize,
    /// The seed used: pass it as `--seed` to draw the same sample again.
    pub seed: u64,
    pub seed_given: bool,
    pub verdicts: Vec<Verdict>,
    pub summary: SpotSummary,
    pub narrow_rule: &'static str,
}
