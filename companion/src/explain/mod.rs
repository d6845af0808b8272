//! Operator spot-checks, read-only: why one document has its domain (`explain`)
//! and verdicts on a random sample (`spot_check`), recomputed from the concept
//! files with the engine's own rules (`assign`, `engine::decide_tie`).

use crate::assign::{self, Outcome, Rule, Status};
use crate::context::Env;
use crate::engine::journal::{self, Kind};
use crate::engine::{self, Channels, CountCache};
use crate::error::{Error, Result};
use crate::output::{self, pct};
use crate::recon::concepts::{self, DocScan, SkipReason};
use crate::recon::db::{self as recondb, Candidate};
use crate::recon::pyjson::Counts;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use shared_constants::{COUNT, DOMAINS};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Channel-mates listed as the tiebreaker's top contributors.
pub const TOP_CONTRIBUTORS: usize = 5;
/// Journal entries shown per document.
const HISTORY: u64 = 5;
/// A verdict is `narrow` when the domain leads the runner-up by at most this
/// many concepts: one changed concept could flip it.
pub const NARROW_MARGIN_MAX: u32 = 1;
/// … or when it holds less than this share of the document's valid-domain
/// concepts: most of the document is about something else.
pub const NARROW_SHARE_BELOW: f64 = 0.5;
/// How `narrow` is defined, shown with every spot check.
pub const NARROW_RULE: &str = "narrow = the domain leads the runner-up by at most 1 concept, or holds under 50% of the \
document's valid-domain concepts; for tied_pass_2 the document is tied by construction, so the channel's lead is judged \
instead; tied_manual is always narrow (a person must review it)";

/// PeerTube's short uuids: the uuid's 128 bits in base 58 (flickr alphabet),
/// left-padded to 22 characters, as the `short-uuid` package writes them.
const BASE58: &[u8; 58] = b"123456789abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
const SHORT_UUID_LEN: usize = 22;

// ---------------------------------------------------------------------------
// The data an operator (or the dashboard) reads.

/// One domain and a count (count may be 0 where a tied domain has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainCount {
    pub id: u16,
    pub domain: &'static str,
    pub count: u32,
}

/// What recon.db holds for the document (the four feature columns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stored {
    pub domain: Option<String>,
    pub status: Option<String>,
    pub assigned_at: Option<String>,
    pub pushed_at: Option<String>,
}

/// A window file that counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowCounts {
    pub file: String,
    /// Elements of the file's top-level array.
    pub items: u32,
    /// Valid-domain counts, non-zero only, in id order.
    pub counts: Vec<DomainCount>,
    /// Sum of `counts`.
    pub counted: u32,
    pub non_object_items: u32,
    /// Objects with no valid domain (missing, legacy label, not a string).
    pub no_valid_domain_items: u32,
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
    pub total: u32,
}

/// How the channel tiebreaker saw a tied document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TieDetail {
    /// The domains sharing the document's highest count (id order).
    pub tied: Vec<&'static str>,
    /// Their shared count in the document.
    pub tied_count: u32,
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
    pub channel_margin: Option<u32>,
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
    /// None when the hash is not a valid md5 (it is then never used as a path).
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
    pub total_valid: u32,
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
}

// ---------------------------------------------------------------------------
// Targets: hash, uuid, short uuid, /w/ URL.

/// What the operator asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A document hash (lowercased).
    Hash(String),
    /// A PeerTube video, in both the forms its catalogue path may hold.
    Video { given: String, long: Option<String>, short: Option<String> },
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36 && s.bytes().enumerate().all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() })
}

fn is_short_uuid(s: &str) -> bool {
    s.len() == SHORT_UUID_LEN && s.bytes().all(|b| BASE58.contains(&b))
}

/// PeerTube's short form of a 36-char uuid.
pub fn uuid_to_short(uuid: &str) -> Option<String> {
    if !is_uuid(uuid) {
        return None;
    }
    let hex: String = uuid.chars().filter(|&c| c != '-').collect();
    let mut n = u128::from_str_radix(&hex, 16).ok()?;
    let mut out = Vec::with_capacity(SHORT_UUID_LEN);
    while n > 0 {
        out.push(BASE58[(n % 58) as usize]);
        n /= 58;
    }
    out.resize(out.len().max(SHORT_UUID_LEN), BASE58[0]);
    out.reverse();
    String::from_utf8(out).ok()
}

/// The 36-char uuid of a PeerTube short uuid (None if it is not one).
pub fn short_to_uuid(short: &str) -> Option<String> {
    if !is_short_uuid(short) {
        return None;
    }
    let mut n: u128 = 0;
    for b in short.bytes() {
        let d = BASE58.iter().position(|&c| c == b)? as u128;
        n = n.checked_mul(58)?.checked_add(d)?;
    }
    let h = format!("{n:032x}");
    Some(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// Parses what the operator typed. Nothing here becomes a path: only a valid
/// hash ever does, later, through `concepts::concept_dir`.
pub fn parse_target(raw: &str) -> Result<Target> {
    let t = raw.trim();
    if t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Target::Hash(t.to_ascii_lowercase()));
    }
    let id = match t.rsplit_once("/w/") {
        Some((_, rest)) => rest.split(['?', '#', '/']).next().unwrap_or(""),
        None => t,
    };
    if is_uuid(id) {
        let long = id.to_ascii_lowercase();
        let short = uuid_to_short(&long);
        return Ok(Target::Video { given: id.to_string(), long: Some(long), short });
    }
    if is_short_uuid(id) {
        return Ok(Target::Video { given: id.to_string(), long: short_to_uuid(id), short: Some(id.to_string()) });
    }
    Err(Error::BadTarget(format!(
        "{raw:?} is not a document hash (32 hex characters), a PeerTube video uuid (36 characters, or the 22-character short form) \
         or a URL containing /w/{{uuid}}"
    )))
}

/// The document hash a target names. A video is matched on what follows the
/// last `/w/` of `catalogue.path`, in either uuid form.
pub fn resolve(conn: &Connection, target: &Target) -> Result<String> {
    let (given, long, short) = match target {
        Target::Hash(h) => return Ok(h.clone()),
        Target::Video { given, long, short } => (given, long.as_deref(), short.as_deref()),
    };
    // instr() narrows the scan; the exact match on the path's tail is done below.
    let mut stmt = conn.prepare(
        "SELECT hash, path FROM catalogue
         WHERE (?1 IS NOT NULL AND instr(lower(path), ?1) > 0) OR (?2 IS NOT NULL AND instr(path, ?2) > 0)",
    )?;
    let rows =
        stmt.query_map(rusqlite::params![long, short], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))?.collect::<Result<Vec<_>, _>>()?;
    let mut found = BTreeSet::new();
    for (hash, path) in rows {
        let Some((_, id)) = path.as_deref().and_then(|p| p.rsplit_once("/w/")) else { continue };
        if long.is_some_and(|l| id.eq_ignore_ascii_case(l)) || short.is_some_and(|s| id == s) {
            found.insert(hash);
        }
    }
    let mut it = found.iter();
    match (it.next(), found.len()) {
        (None, _) => Err(Error::NotFound(format!("no catalogue row has a video path ending in /w/{given}"))),
        (Some(h), 1) => Ok(h.clone()),
        _ => Err(Error::Other(format!(
            "video {given} matches {} documents ({}): explain one of them by hash",
            found.len(),
            found.iter().cloned().collect::<Vec<_>>().join(", ")
        ))),
    }
}

// ---------------------------------------------------------------------------
// Reading: one document's rows, its files, its channel (only when tied).

#[derive(Debug, Default)]
struct DocRow {
    in_documents: bool,
    in_catalogue: bool,
    book_title: Option<String>,
    doc_filename: Option<String>,
    doc_status: Option<String>,
    stored: Stored,
    cat_filename: Option<String>,
    path: Option<String>,
    source: Option<String>,
    category: Option<String>,
}

impl DocRow {
    fn title(&self) -> Option<String> {
        self.book_title.clone().filter(|t| !t.trim().is_empty()).or_else(|| self.cat_filename.clone()).or_else(|| self.doc_filename.clone())
    }
}

fn load_row(conn: &Connection, hash: &str, migrated: bool) -> Result<DocRow> {
    let cols =
        if migrated { "d.recon_domain, d.recon_domain_status, d.recon_domain_assigned_at, d.peertube_category_pushed_at" } else { "NULL, NULL, NULL, NULL" };
    let sql = format!(
        "SELECT d.hash IS NOT NULL, c.hash IS NOT NULL, d.book_title, d.filename, d.status, {cols},
                c.filename, c.path, c.source, c.category
         FROM (SELECT ?1 AS hash) k
         LEFT JOIN documents d ON d.hash = k.hash
         LEFT JOIN catalogue c ON c.hash = k.hash"
    );
    Ok(conn.query_row(&sql, [hash], |r| {
        Ok(DocRow {
            in_documents: r.get(0)?,
            in_catalogue: r.get(1)?,
            book_title: r.get(2)?,
            doc_filename: r.get(3)?,
            doc_status: r.get(4)?,
            stored: Stored { domain: r.get(5)?, status: r.get(6)?, assigned_at: r.get(7)?, pushed_at: r.get(8)? },
            cat_filename: r.get(9)?,
            path: r.get(10)?,
            source: r.get(11)?,
            category: r.get(12)?,
        })
    })?)
}

fn title_of(conn: &Connection, hash: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT COALESCE(NULLIF(trim(d.book_title), ''), c.filename, d.filename)
             FROM (SELECT ?1 AS hash) k
             LEFT JOIN documents d ON d.hash = k.hash
             LEFT JOIN catalogue c ON c.hash = k.hash",
            [hash],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

fn history(conn: &Connection, hash: &str) -> Result<Vec<HistoryEntry>> {
    let has_journal = conn.query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'companion_journal'", [], |_| Ok(())).optional()?.is_some();
    if !has_journal {
        return Ok(Vec::new());
    }
    let field = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Ok(journal::history(conn, Kind::Documents, hash, HISTORY)?
        .into_iter()
        .map(|(run_id, at, old, new, state)| HistoryEntry {
            from_status: field(&old, "recon_domain_status"),
            from_domain: field(&old, "recon_domain"),
            to_status: field(&new, "recon_domain_status"),
            to_domain: field(&new, "recon_domain"),
            run_id,
            at,
            state,
        })
        .collect())
}

/// The engine's caches, filled lazily: a document's files are read once, a
/// channel's members only when a tied document in a non-mega channel needs them.
struct Work<'a> {
    env: Env,
    conn: &'a Connection,
    migrated: bool,
    channels: Channels,
    loaded: HashSet<String>,
    cache: CountCache,
    /// Per channel: counts summed over all its members (as `decide_tie` expects).
    sums: HashMap<String, Counts>,
}

impl<'a> Work<'a> {
    fn new(env: &Env, conn: &'a Connection) -> Result<Work<'a>> {
        Ok(Work {
            env: Env { progress: false, ..env.clone() },
            conn,
            migrated: recondb::feature_columns_present(conn)?,
            channels: Channels { members: HashMap::new(), channel_of: HashMap::new() },
            loaded: HashSet::new(),
            cache: CountCache { scans: HashMap::new() },
            sums: HashMap::new(),
        })
    }

    /// Reads documents' files in parallel, skipping those already read.
    fn scan(&mut self, hashes: &[String]) {
        let missing: Vec<String> = hashes.iter().filter(|h| !self.cache.scans.contains_key(*h)).cloned().collect();
        let scans = self.env.scan_docs(&missing);
        self.cache.scans.extend(missing.into_iter().zip(scans));
    }

    /// The channel's PeerTube catalogue rows (its size decides mega-ness).
    fn load_channel(&mut self, ch: &str) -> Result<()> {
        if !self.loaded.insert(ch.to_string()) {
            return Ok(());
        }
        // No ORDER BY: SQLite would walk the hash index and fetch every row by
        // it (~50 ms on 22,000 rows) instead of one sequential scan (~4 ms).
        let mut stmt = self.conn.prepare("SELECT hash FROM catalogue WHERE source = ?1 AND category = ?2")?;
        let mut members = stmt.query_map([self.env.source.as_str(), ch], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
        members.sort_unstable();
        for m in &members {
            self.channels.channel_of.insert(m.clone(), ch.to_string());
        }
        self.channels.members.insert(ch.to_string(), members);
        Ok(())
    }

    fn sum_channel(&mut self, ch: &str) {
        if self.sums.contains_key(ch) {
            return;
        }
        let members = self.channels.members.get(ch).cloned().unwrap_or_default();
        self.scan(&members);
        let sum = self.cache.channel_others(&members, "");
        self.sums.insert(ch.to_string(), sum);
    }

    fn doc_scan(&self, hash: &str) -> Option<&DocScan> {
        self.cache.scans.get(hash)
    }
}

// ---------------------------------------------------------------------------
// Assembling an explanation.

fn dc(i: usize, count: u32) -> DomainCount {
    DomainCount { id: DOMAINS[i].id, domain: DOMAINS[i].label, count }
}

fn nonzero(c: &Counts) -> Vec<DomainCount> {
    (0..COUNT).filter(|&i| c[i] > 0).map(|i| dc(i, c[i])).collect()
}

fn ranked(c: &Counts) -> Vec<DomainCount> {
    let mut v = nonzero(c);
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    v
}

fn counts_from(list: &[DomainCount]) -> Counts {
    let mut c = [0u32; COUNT];
    for d in list {
        if let Some(i) = shared_constants::index_of_id(d.id) {
            c[i] = d.count;
        }
    }
    c
}

/// "A", "A and B", "A, B and C".
fn join_labels<S: AsRef<str>>(labels: &[S]) -> String {
    match labels {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            format!("{} and {}", init.iter().map(|s| s.as_ref()).collect::<Vec<_>>().join(", "), last.as_ref())
        }
    }
}

fn labels_of(idx: &[usize]) -> Vec<&'static str> {
    idx.iter().map(|&i| DOMAINS[i].label).collect()
}

/// An outcome as the operator would say it.
fn describe(o: &Outcome) -> String {
    let d = o.domain_label().unwrap_or("-");
    match o.rule {
        Rule::NoValidDomain => "needs_reprocess (no valid domain)".to_string(),
        Rule::ClearWinner => format!("assigned / {d}"),
        Rule::Tie => format!("tied_pass_1 (a tie between {})", join_labels(&labels_of(&o.tied))),
        Rule::Channel => format!("tied_pass_2 / {d} (the channel decides the tie)"),
        Rule::MegaChannel => format!("tied_manual / {d} (mega-channel: alphabetical fallback, for review)"),
        Rule::AlphabeticalFallback => format!("tied_manual / {d} (the channel does not settle the tie: alphabetical fallback, for review)"),
    }
}

/// Compares the stored result with what the algorithm would store today:
/// `assigned`, `tied_pass_1` and `needs_reprocess` come from pass 1 (the
/// tiebreaker has not run on them), `tied_pass_2` and `tied_manual` from the
/// tiebreaker; a person's choice (`manual_assigned`) is never stale.
pub fn staleness(stored_status: Option<&str>, stored_domain: Option<&str>, pass1: &Outcome, tiebroken: &Outcome) -> Staleness {
    let Some(raw) = stored_status else {
        return Staleness {
            stale: false,
            compared_with: None,
            message: format!("Nothing stored yet; backfill and tiebreaker would store {}.", describe(tiebroken)),
        };
    };
    let Some(status) = Status::parse(raw) else {
        return Staleness {
            stale: false,
            compared_with: None,
            message: format!("Stored status {raw:?} is not one of the feature's statuses; not compared with the files."),
        };
    };
    let (expected, against) = match status {
        Status::ManualAssigned => {
            return Staleness {
                stale: false,
                compared_with: None,
                message: format!(
                    "Chosen by a person in the dashboard ({}), so never recomputed; the files alone would give {}.",
                    stored_domain.unwrap_or("-"),
                    describe(tiebroken)
                ),
            };
        }
        Status::Assigned | Status::TiedPass1 | Status::NeedsReprocess | Status::NoConcepts => (pass1, "pass1"),
        Status::TiedPass2 | Status::TiedManual => (tiebroken, "tiebreaker"),
    };
    let stale = match status {
        // needs_reprocess stores no domain; it is stale once the files have one.
        Status::NeedsReprocess => expected.status != Status::NeedsReprocess,
        _ => expected.status != status || expected.domain_label() != stored_domain,
    };
    let stored = match stored_domain {
        Some(d) => format!("{raw} / {d}"),
        None => raw.to_string(),
    };
    let mut message = if stale {
        format!("STALE: stored {stored}, but the files now give {}", describe(expected))
    } else {
        format!("Up to date: the files still give {}", describe(expected))
    };
    if expected.status == Status::TiedPass1 && tiebroken.status != Status::TiedPass1 {
        message.push_str(&format!("; the tiebreaker would then store {}", describe(tiebroken)));
    }
    message.push('.');
    if stale {
        message.push_str(" The files changed after the result was stored (or it was stored by other means).");
    }
    Staleness { stale, compared_with: Some(against), message }
}

fn skip_kind(r: &SkipReason) -> (&'static str, String) {
    match r {
        SkipReason::Unreadable(e) => ("unreadable", e.clone()),
        SkipReason::NotUtf8 => ("not_utf8", "not valid UTF-8 (RECON's Python crashes on it; skipped as unreadable)".into()),
        SkipReason::Malformed(m) => ("malformed", format!("not JSON as Python reads it: {m}")),
        SkipReason::NotArray => ("not_array", "valid JSON, but not an array of concepts".into()),
    }
}

fn tie_detail(w: &Work<'_>, hash: &str, channel: Option<&str>, doc: &Counts, o: &Outcome) -> Result<TieDetail> {
    let tied = o.tied.clone();
    let size = channel.map(|c| w.channels.size(c)).unwrap_or(0);
    let mega = w.channels.is_mega(&w.env, channel);
    let mega_reason = match channel {
        Some(ch) if mega => Some(if w.env.mega_skip.iter().any(|s| s == ch) {
            format!("{ch:?} is on the mega-channel skip list")
        } else {
            format!("{size} PeerTube videos, more than the threshold of {}", w.env.mega_threshold)
        }),
        _ => None,
    };
    let mut detail = TieDetail {
        tied: labels_of(&tied),
        tied_count: tied.first().map(|&i| doc[i]).unwrap_or(0),
        channel: channel.map(str::to_string),
        channel_size: size,
        mega,
        mega_reason,
        channel_counts: None,
        channel_margin: None,
        mates_counted: 0,
        top_contributors: Vec::new(),
    };
    let Some(ch) = channel.filter(|_| !mega) else { return Ok(detail) };
    let members: &[String] = w.channels.members.get(ch).map(Vec::as_slice).unwrap_or(&[]);
    // Same sum as the tiebreaker's: every member but the document itself.
    let others = w.cache.channel_others(members, hash);
    detail.channel_counts = Some(tied.iter().map(|&i| dc(i, others[i])).collect());
    detail.mates_counted = members.iter().filter(|m| m.as_str() != hash).count() as u64;
    if o.rule == Rule::Channel {
        if let Some(win) = o.domain {
            let best_other = tied.iter().filter(|&&i| i != win).map(|&i| others[i]).max().unwrap_or(0);
            detail.channel_margin = Some(others[win].saturating_sub(best_other));
        }
    }
    let mut contrib: Vec<(u32, &String, Vec<DomainCount>)> = members
        .iter()
        .filter(|m| m.as_str() != hash)
        .filter_map(|m| {
            let t = w.cache.totals(m)?;
            let counts: Vec<DomainCount> = tied.iter().map(|&i| dc(i, t[i])).collect();
            let total: u32 = counts.iter().map(|d| d.count).sum();
            (total > 0).then_some((total, m, counts))
        })
        .collect();
    contrib.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    contrib.truncate(TOP_CONTRIBUTORS);
    for (total, m, counts) in contrib {
        detail.top_contributors.push(Contributor { hash: m.clone(), title: title_of(w.conn, m)?, counts, total });
    }
    Ok(detail)
}

fn reason(scan: &DocScan, skipped_files: usize, outcome: &Outcome, tie: Option<&TieDetail>) -> String {
    let totals = &scan.totals;
    let total: u32 = totals.iter().sum();
    match outcome.rule {
        Rule::NoValidDomain if scan.bad_hash => "The hash is not a valid md5, so its concept dir is never read: no valid domain (needs_reprocess).".into(),
        Rule::NoValidDomain if !scan.dir_found => "No concept dir: nothing to count, so it needs reprocessing.".into(),
        Rule::NoValidDomain => {
            format!("No concept in its {} window file(s) ({skipped_files} skipped) carries a valid domain, so it needs reprocessing.", scan.windows.len())
        }
        Rule::ClearWinner => {
            let Some(win) = outcome.domain else { return describe(outcome) };
            let (share, margin) = assign::margin(totals, win);
            let runner = (0..COUNT).filter(|&i| i != win && totals[i] > 0).max_by_key(|&i| (totals[i], std::cmp::Reverse(i)));
            match runner {
                Some(r) => format!(
                    "Clear winner: {} has {} of {total} valid-domain concepts ({}), {margin} more than the runner-up {} ({}).",
                    DOMAINS[win].label,
                    totals[win],
                    pct(share * 100.0),
                    DOMAINS[r].label,
                    totals[r]
                ),
                None => format!("Clear winner: {} is the only valid domain ({} concept(s)).", DOMAINS[win].label, totals[win]),
            }
        }
        Rule::Tie => describe(outcome),
        Rule::Channel | Rule::MegaChannel | Rule::AlphabeticalFallback => {
            let Some(t) = tie else { return describe(outcome) };
            let tie_s = format!("{} tie at {} concept(s) each", join_labels(&t.tied), t.tied_count);
            let d = outcome.domain_label().unwrap_or("-");
            let chan_counts = || {
                t.channel_counts.as_ref().map(|cc| cc.iter().map(|c| format!("{} {}", c.domain, c.count)).collect::<Vec<_>>().join(", ")).unwrap_or_default()
            };
            let ch = t.channel.as_deref().unwrap_or("");
            match outcome.rule {
                Rule::Channel => format!(
                    "{tie_s}; the channel {ch:?} decides: its {} other video(s) count {} → {d} (tied_pass_2).",
                    t.mates_counted,
                    chan_counts()
                ),
                Rule::MegaChannel => format!(
                    "{tie_s}; {ch:?} is a mega-channel ({}), so its counts say nothing about one video: the alphabetically first tied domain, {d}, is stored for review (tied_manual).",
                    t.mega_reason.as_deref().unwrap_or("")
                ),
                _ if t.channel.is_none() => format!(
                    "{tie_s}; the document has no channel to break the tie, so the alphabetically first tied domain, {d}, is stored for review (tied_manual)."
                ),
                _ => format!(
                    "{tie_s}; the channel {ch:?} does not settle it ({}), so the alphabetically first tied domain, {d}, is stored for review (tied_manual).",
                    chan_counts()
                ),
            }
        }
    }
}

fn explain_hash(w: &mut Work<'_>, hash: &str) -> Result<Explanation> {
    let row = load_row(w.conn, hash, w.migrated)?;
    if !row.in_documents && !row.in_catalogue {
        return Err(Error::NotFound(format!("document {hash}: no documents or catalogue row")));
    }
    w.scan(&[hash.to_string()]);
    let scan = w.doc_scan(hash).cloned().unwrap_or_default();
    let own = scan.dir_found.then_some(scan.totals);
    let pass1 = assign::pass1_as(own.as_ref(), w.env.no_counts_status());
    let (outcome, tie) = if pass1.status == Status::TiedPass1 {
        if let Some(ch) = row.category.as_deref() {
            w.load_channel(ch)?;
            // A mega-channel's members are never read: the rule ignores them.
            if !w.channels.is_mega(&w.env, Some(ch)) {
                w.sum_channel(ch);
            }
        }
        let cand = Candidate { hash: hash.to_string(), channel: row.category.clone() };
        let o = engine::decide_tie(&w.env, &w.channels, &w.cache, &w.sums, &cand);
        let tie = tie_detail(w, hash, row.category.as_deref(), &scan.totals, &o)?;
        (o, Some(tie))
    } else {
        (pass1.clone(), None)
    };

    let mut windows = Vec::new();
    let mut skipped_files = Vec::new();
    let (mut non_obj, mut no_valid) = (0u64, 0u64);
    for win in &scan.windows {
        match &win.result {
            Ok(fc) => {
                non_obj += u64::from(fc.non_objects);
                no_valid += u64::from(fc.no_valid_domain);
                windows.push(WindowCounts {
                    file: win.name.clone(),
                    items: fc.items,
                    counts: nonzero(&fc.counts),
                    counted: fc.counts.iter().sum(),
                    non_object_items: fc.non_objects,
                    no_valid_domain_items: fc.no_valid_domain,
                });
            }
            Err(r) => {
                let (kind, reason) = skip_kind(r);
                skipped_files.push(SkippedFile { file: win.name.clone(), kind, reason });
            }
        }
    }
    let staleness = staleness(row.stored.status.as_deref(), row.stored.domain.as_deref(), &pass1, &outcome);
    let concept_dir = concepts::concept_dir(&w.env.concepts_dir, hash).ok().map(|p| p.display().to_string());
    Ok(Explanation {
        hash: hash.to_string(),
        title: row.title(),
        channel: row.category.clone(),
        source: row.source.clone(),
        video_url: row.path.clone(),
        document_status: row.doc_status.clone(),
        in_documents: row.in_documents,
        in_catalogue: row.in_catalogue,
        migrated: w.migrated,
        stored: row.stored.clone(),
        concept_dir,
        concept_dir_found: scan.dir_found,
        reason: reason(&scan, skipped_files.len(), &outcome, tie.as_ref()),
        windows,
        skipped_files,
        skipped_non_object_items: non_obj,
        skipped_no_valid_domain_items: no_valid,
        totals: ranked(&scan.totals),
        total_valid: scan.total(),
        pass1: Decided::from(&pass1),
        outcome: Decided::from(&outcome),
        rule: outcome.rule,
        tie,
        stale: staleness.stale,
        staleness,
        history: history(w.conn, hash)?,
    })
}

/// Explains one document: `target` is a hash, a PeerTube video uuid (36 or 22
/// characters) or a URL containing `/w/{uuid}`. Reads only the document's
/// files, and its channel-mates' files only when it is tied in a non-mega channel.
pub fn explain(env: &Env, conn: &Connection, target: &str) -> Result<Explanation> {
    let t = parse_target(target)?;
    let hash = resolve(conn, &t)?;
    let mut w = Work::new(env, conn)?;
    explain_hash(&mut w, &hash)
}

// ---------------------------------------------------------------------------
// Spot checks.

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
    pub status: Option<String>,
    /// The stored domain.
    pub domain: Option<String>,
    /// Its share of the document's valid-domain concepts (files as they are now).
    pub share: Option<f64>,
    /// Its lead over the runner-up, in concepts (0 when it does not lead).
    pub margin: Option<u32>,
    pub runner_up: Option<&'static str>,
    pub total_valid: u32,
    /// For ties: the stored domain's lead over the other tied domains in the channel's counts.
    pub channel_margin: Option<u32>,
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
    pub status: String,
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

/// Judges one explained document.
pub fn verdict(e: &Explanation) -> Verdict {
    let counts = counts_from(&e.totals);
    let idx = e.stored.domain.as_deref().and_then(shared_constants::index_of_label);
    let status = e.stored.status.as_deref().and_then(Status::parse);
    let (mut share, mut margin, mut runner_up) = (None, None, None);
    if let Some(i) = idx {
        let (s, m) = assign::margin(&counts, i);
        share = Some(s);
        margin = Some(m);
        runner_up = (0..COUNT).filter(|&j| j != i && counts[j] > 0).max_by_key(|&j| (counts[j], std::cmp::Reverse(j))).map(|j| DOMAINS[j].label);
    }
    // The stored domain's lead among the tied domains in the channel's counts.
    let channel_margin = match (&e.tie, idx) {
        (Some(t), Some(i)) => t.channel_counts.as_ref().and_then(|cc| {
            let own = cc.iter().find(|c| c.domain == DOMAINS[i].label)?.count;
            let best_other = cc.iter().filter(|c| c.domain != DOMAINS[i].label).map(|c| c.count).max().unwrap_or(0);
            Some(own.saturating_sub(best_other))
        }),
        _ => None,
    };
    let class = match (idx, status) {
        (None, _) => Class::NoDomain,
        (Some(_), Some(Status::TiedManual)) => Class::Narrow,
        (Some(_), Some(Status::TiedPass2)) => {
            if channel_margin.is_some_and(|m| m > NARROW_MARGIN_MAX) {
                Class::Clear
            } else {
                Class::Narrow
            }
        }
        (Some(_), _) => {
            if margin.is_some_and(|m| m > NARROW_MARGIN_MAX) && share.is_some_and(|s| s >= NARROW_SHARE_BELOW) {
                Class::Clear
            } else {
                Class::Narrow
            }
        }
    };
    Verdict {
        hash: e.hash.clone(),
        title: e.title.clone(),
        channel: e.channel.clone(),
        status: e.stored.status.clone(),
        domain: e.stored.domain.clone(),
        share,
        margin,
        runner_up,
        total_valid: e.total_valid,
        channel_margin,
        class,
        stale: e.stale,
        note: e.staleness.message.clone(),
    }
}

/// Draws `sample` documents of `status` (uniformly, without replacement; the
/// draw depends only on the seed and the set of hashes) and judges each.
pub fn spot_check(env: &Env, conn: &Connection, status: &str, sample: usize, seed: Option<u64>) -> Result<SpotCheck> {
    let st = Status::parse(status).ok_or_else(|| {
        Error::BadTarget(format!("unknown status {status:?}: expected one of {}", Status::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")))
    })?;
    if !recondb::feature_columns_present(conn)? {
        return Err(Error::NotMigrated("recon.db has no recon_domain columns yet, so nothing is assigned".into()));
    }
    let hashes: Vec<String> = {
        let mut stmt = conn.prepare("SELECT hash FROM documents WHERE recon_domain_status = ?1 ORDER BY hash")?;
        let rows = stmt.query_map([st.as_str()], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
        rows
    };
    // A short seed is easy to retype at a STOP point.
    let seed_given = seed.is_some();
    let seed = seed.unwrap_or_else(|| rand::thread_rng().gen_range(0..1_000_000_000));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = sample.min(hashes.len());
    let mut idx = rand::seq::index::sample(&mut rng, hashes.len(), n).into_vec();
    idx.sort_unstable();
    let picked: Vec<String> = idx.into_iter().map(|i| hashes[i].clone()).collect();

    let mut w = Work::new(env, conn)?;
    w.scan(&picked);
    let mut out = SpotCheck {
        status: st.as_str().to_string(),
        available: hashes.len() as u64,
        requested: sample,
        seed,
        seed_given,
        verdicts: Vec::with_capacity(picked.len()),
        summary: SpotSummary::default(),
        narrow_rule: NARROW_RULE,
    };
    for h in &picked {
        let v = verdict(&explain_hash(&mut w, h)?);
        let s = &mut out.summary;
        s.sampled += 1;
        match v.class {
            Class::Clear => s.clear += 1,
            Class::Narrow => s.narrow += 1,
            Class::NoDomain => s.no_domain += 1,
        }
        s.stale += u64::from(v.stale);
        out.verdicts.push(v);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// CLI.

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
                    (None, _) => "- (hash is not a valid md5)".into(),
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
        let total = f64::from(e.total_valid.max(1));
        push(
            &mut out,
            &output::table(
                &["domain", "id", "count", "share"],
                e.totals.iter().map(|d| vec![d.domain.to_string(), d.id.to_string(), d.count.to_string(), pct(f64::from(d.count) * 100.0 / total)]),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pairs: &[(u16, u32)]) -> Counts {
        let mut out = [0u32; COUNT];
        for &(id, n) in pairs {
            out[usize::from(id - 100)] = n;
        }
        out
    }

    #[test]
    fn short_uuid_round_trip_matches_peertube() {
        // short-uuid's own test vector (flickr base58).
        assert_eq!(uuid_to_short("a44521d0-0fb8-4ade-8002-3385545c3318").as_deref(), Some("mhvXdrZT4jP5T8vBxuvm75"));
        assert_eq!(short_to_uuid("mhvXdrZT4jP5T8vBxuvm75").as_deref(), Some("a44521d0-0fb8-4ade-8002-3385545c3318"));
        // Small values are padded with the alphabet's first character.
        assert_eq!(uuid_to_short("00000000-0000-0000-0000-000000000001").as_deref(), Some("1111111111111111111112"));
        // 22 base58 digits can exceed 128 bits.
        assert_eq!(short_to_uuid("ZZZZZZZZZZZZZZZZZZZZZZ"), None);
        assert_eq!(short_to_uuid("0OIl000000000000000000"), None);
    }

    #[test]
    fn targets() {
        let h = "0123456789ABCDEF0123456789abcdef";
        assert_eq!(parse_target(h).ok(), Some(Target::Hash(h.to_ascii_lowercase())));
        let u = "a44521d0-0fb8-4ade-8002-3385545c3318";
        let want = Target::Video { given: u.to_string(), long: Some(u.to_string()), short: Some("mhvXdrZT4jP5T8vBxuvm75".into()) };
        assert_eq!(parse_target(u).ok(), Some(want.clone()));
        assert_eq!(parse_target(&format!("https://stream.echo6.co/w/{u}?start=3")).ok(), Some(want));
        match parse_target("https://x/videos/w/mhvXdrZT4jP5T8vBxuvm75/") {
            Ok(Target::Video { long, .. }) => assert_eq!(long.as_deref(), Some(u)),
            other => panic!("{other:?}"),
        }
        for bad in ["", "../../etc/passwd", "hello", "https://x/w/", "https://x/v/mhvXdrZT4jP5T8vBxuvm75", "0123456789abcdef0123456789abcdeg"] {
            assert!(matches!(parse_target(bad), Err(Error::BadTarget(_))), "{bad:?}");
        }
    }

    #[test]
    fn staleness_rules() {
        let medical = assign::pass1(Some(&c(&[(106, 3), (111, 1)])));
        let tie = assign::pass1(Some(&c(&[(106, 2), (111, 2)])));
        let none = assign::pass1(None);
        let resolved = Outcome { status: Status::TiedPass2, domain: Some(11), tied: vec![6, 11], rule: Rule::Channel };
        assert!(!staleness(Some("assigned"), Some("Medical"), &medical, &medical).stale);
        assert!(staleness(Some("assigned"), Some("Security"), &medical, &medical).stale);
        let s = staleness(Some("assigned"), Some("Medical"), &tie, &resolved);
        assert!(s.stale && s.message.contains("tied_pass_2 / Security"), "{}", s.message);
        assert!(!staleness(Some("tied_pass_2"), Some("Security"), &tie, &resolved).stale);
        assert!(staleness(Some("tied_pass_2"), Some("Medical"), &tie, &resolved).stale);
        assert_eq!(staleness(Some("tied_pass_2"), Some("Security"), &tie, &resolved).compared_with, Some("tiebreaker"));
        assert!(!staleness(Some("tied_pass_1"), None, &tie, &resolved).stale);
        assert!(staleness(Some("tied_pass_1"), None, &medical, &medical).stale);
        assert!(!staleness(Some("needs_reprocess"), None, &none, &none).stale);
        assert!(staleness(Some("needs_reprocess"), None, &medical, &medical).stale);
        let m = staleness(Some("manual_assigned"), Some("Water Systems"), &medical, &medical);
        assert!(!m.stale && m.message.contains("person"));
        assert!(!staleness(None, None, &medical, &medical).stale);
        assert!(!staleness(Some("bogus"), None, &medical, &medical).stale);
    }

    #[test]
    fn join_labels_reads_naturally() {
        assert_eq!(join_labels(&["A"]), "A");
        assert_eq!(join_labels(&["A", "B"]), "A and B");
        assert_eq!(join_labels(&["A", "B", "C"]), "A, B and C");
    }
}
