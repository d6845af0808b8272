//! The plan of a demo data set, before anything is written: channels, documents
//! and each document's engineered pass-1 outcome (`Shape`).

use super::vocab::{CHANNEL_A, CHANNEL_B, DOMAIN_WORDS, LEGACY, NON_ASCII};
use super::DemoSpec;
use crate::peertube::video_id;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reprocess {
    NoDir,
    EmptyDir,
    OnlyLegacy,
    OnlyEmptyArrays,
    OnlyBroken,
}

/// The planned pass-1 outcome of a document's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Clear { winner: u8 },
    Tie { a: u8, b: u8, c: Option<u8> },
    Reprocess(Reprocess),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Stream,
    Library,
}

#[derive(Debug, Clone)]
pub(super) struct Channel {
    pub(super) name: Option<String>,
    pub(super) size: usize,
    pub(super) home: u8,
    pub(super) second: u8,
}

#[derive(Debug, Clone)]
pub(super) struct Doc {
    pub(super) hash: String,
    pub(super) title: String,
    pub(super) kind: Kind,
    /// catalogue.category: channel name for videos, a collection for library docs.
    pub(super) category: Option<String>,
    pub(super) path: String,
    pub(super) status: &'static str,
    pub(super) shape: Shape,
    pub(super) discovered_at: String,
    /// Vocabulary and filler-domain bias.
    pub(super) home: u8,
    pub(super) second: u8,
    /// Enriching documents have only part of their windows written.
    pub(super) partial: bool,
    pub(super) size_bytes: i64,
}

/// One concept's `domain` field.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum DomainField {
    Label(u8),
    List(Vec<u8>),
    /// A list mixing one valid label with a legacy one.
    ListWithLegacy(u8, &'static str),
    Legacy(&'static str),
    LegacyList,
    Null,
    Missing,
    /// Not a string: `106`.
    Number,
}

impl DomainField {
    pub(super) fn add_counts(&self, counts: &mut [u32; 18]) {
        match self {
            DomainField::Label(d) => counts[*d as usize] += 1,
            DomainField::List(ds) => ds.iter().for_each(|d| counts[*d as usize] += 1),
            DomainField::ListWithLegacy(d, _) => counts[*d as usize] += 1,
            _ => {}
        }
    }
    pub(super) fn contains(&self, d: u8) -> bool {
        match self {
            DomainField::Label(x) | DomainField::ListWithLegacy(x, _) => *x == d,
            DomainField::List(ds) => ds.contains(&d),
            _ => false,
        }
    }
    pub(super) fn vocabulary(&self, fallback: u8) -> u8 {
        match self {
            DomainField::Label(d) | DomainField::ListWithLegacy(d, _) => *d,
            DomainField::List(ds) => ds.first().copied().unwrap_or(fallback),
            _ => fallback,
        }
    }
}

pub(super) fn neutral_field(rng: &mut ChaCha8Rng) -> DomainField {
    match rng.gen_range(0..10) {
        0..=4 => DomainField::Legacy(LEGACY[rng.gen_range(0..LEGACY.len())]),
        5 => DomainField::LegacyList,
        6 | 7 => DomainField::Null,
        8 => DomainField::Missing,
        _ => DomainField::Number,
    }
}

pub(super) fn other_domain(rng: &mut ChaCha8Rng, not: &[u8]) -> u8 {
    loop {
        let d = rng.gen_range(0..18u8);
        if !not.contains(&d) {
            return d;
        }
    }
}

pub(super) struct Plan {
    pub(super) channels: Vec<Channel>,
    pub(super) docs: Vec<Doc>,
    /// (hash, channel name, path) of videos with a catalogue row only.
    pub(super) catalogue_only: Vec<(String, String, String)>,
}

fn hex_hash(rng: &mut ChaCha8Rng, seen: &mut HashSet<u128>) -> String {
    loop {
        let v: u128 = rng.gen();
        if seen.insert(v) {
            return format!("{v:032x}");
        }
    }
}

/// A random version-4 uuid, half the time in PeerTube's 22-character short form
/// (both appear after `/w/` in real catalogue paths). The short form comes from
/// PeerTube's own codec, so every one decodes back to a uuid.
fn video_uuid(rng: &mut ChaCha8Rng) -> String {
    let short = rng.gen_bool(0.5);
    let b: [u8; 16] = rng.gen();
    let h = hex::encode(b);
    let long = format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32]);
    if short {
        video_id::uuid_to_short(&long).unwrap_or(long)
    } else {
        long
    }
}

fn plan_channels(spec: &DemoSpec, rng: &mut ChaCha8Rng) -> Vec<Channel> {
    let mut names: HashSet<String> = HashSet::new();
    let mut channels = Vec::new();
    let mut push = |name: Option<String>, size: usize, rng: &mut ChaCha8Rng, names: &mut HashSet<String>| {
        if size == 0 {
            return;
        }
        if let Some(n) = &name {
            names.insert(n.clone());
        }
        let home = rng.gen_range(0..18u8);
        let second = other_domain(rng, &[home]);
        channels.push(Channel { name, size, home, second });
    };
    let mut left = spec.docs;
    let transcript = spec.transcript_docs.min(left);
    push(Some("Transcript".into()), transcript, rng, &mut names);
    left -= transcript;
    let nulls = spec.null_category_docs.min(left);
    push(None, nulls, rng, &mut names);
    left -= nulls;
    if spec.boundary_channel_docs > 0 && left >= spec.boundary_channel_docs * 2 {
        push(Some("Prepper Radio Archive".into()), spec.boundary_channel_docs, rng, &mut names);
        left -= spec.boundary_channel_docs;
    }
    let fresh_name = |rng: &mut ChaCha8Rng, names: &HashSet<String>| -> String {
        let base = format!("{} {}", CHANNEL_A[rng.gen_range(0..CHANNEL_A.len())], CHANNEL_B[rng.gen_range(0..CHANNEL_B.len())]);
        let mut name = base.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base} {n}");
            n += 1;
        }
        name
    };
    let mut mid_budget = (left as f64 * 0.35) as usize;
    let mut first_mid: Option<String> = None;
    while mid_budget >= 100 {
        let size = rng.gen_range(100..=400).min(mid_budget);
        let name = fresh_name(rng, &names);
        first_mid.get_or_insert_with(|| name.clone());
        push(Some(name), size, rng, &mut names);
        mid_budget -= size;
        left -= size;
    }
    // A channel differing from another only in case: channel matching is exact.
    if let Some(m) = first_mid {
        let lower = m.to_lowercase();
        if left >= 2 && !names.contains(&lower) {
            let size = rng.gen_range(1..=left.min(5));
            push(Some(lower), size, rng, &mut names);
            left -= size;
        }
    }
    while left > 0 {
        let u: f64 = rng.gen();
        let size = (1 + (29.0 * u * u) as usize).min(left);
        let name = fresh_name(rng, &names);
        push(Some(name), size, rng, &mut names);
        left -= size;
    }
    channels
}

fn title_for(rng: &mut ChaCha8Rng, domain: u8) -> String {
    let w = DOMAIN_WORDS[domain as usize];
    let topic = w[rng.gen_range(0..w.len())];
    let mut t = match rng.gen_range(0..6) {
        0 => format!("How to handle {topic} on a budget"),
        1 => format!("{topic}: complete guide, part {}", rng.gen_range(1..12)),
        2 => format!("Ten {topic} mistakes I made"),
        3 => format!("Live Q&A — {topic} and more"),
        4 => format!("Field test: {topic} after {} months", rng.gen_range(2..36)),
        _ => format!("Episode {}: {topic}", rng.gen_range(1..400)),
    };
    if rng.gen_bool(0.05) {
        t.push_str(" (");
        t.push_str(NON_ASCII[rng.gen_range(0..NON_ASCII.len())]);
        t.push(')');
    }
    t
}

pub(super) fn plan(spec: &DemoSpec) -> Plan {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let channels = plan_channels(spec, &mut rng);
    let mut seen = HashSet::new();

    // Video → channel, shuffled so channel members are spread over time.
    let mut channel_of: Vec<usize> = channels.iter().enumerate().flat_map(|(i, c)| std::iter::repeat_n(i, c.size)).collect();
    channel_of.shuffle(&mut rng);

    let n_lib = (spec.docs as f64 * spec.non_stream_rate).round() as usize;
    let total = spec.docs + n_lib;

    // Distinct timestamps, a few repeated, handed out in random order.
    let base = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default();
    let mut times: Vec<i64> = Vec::with_capacity(total);
    let mut t = 0i64;
    for i in 0..total {
        if i > 0 && rng.gen_bool(0.005) {
            times.push(t);
            continue;
        }
        t += rng.gen_range(1..1_800);
        times.push(t);
    }
    times.shuffle(&mut rng);
    let stamp = |secs: i64| (base + chrono::Duration::seconds(secs)).format("%Y-%m-%d %H:%M:%S").to_string();

    let mut docs = Vec::with_capacity(total);
    for (i, &ch) in channel_of.iter().enumerate() {
        let c = &channels[ch];
        let status = if rng.gen_bool(spec.incomplete_rate) { ["queued", "queued", "enriching", "failed"][rng.gen_range(0..4)] } else { "complete" };
        let uuid = video_uuid(&mut rng);
        // A handful of old-style watch URLs without `/w/`: push reports them.
        let path = if rng.gen_bool(0.001) { format!("https://{}/videos/watch/{uuid}", spec.source) } else { format!("https://{}/w/{uuid}", spec.source) };
        // The catch-all channel has no home domain of its own.
        let (home, second) = if c.name.as_deref() == Some("Transcript") {
            let h = rng.gen_range(0..18u8);
            (h, other_domain(&mut rng, &[h]))
        } else {
            (c.home, c.second)
        };
        let title_domain = if rng.gen_bool(0.7) { home } else { rng.gen_range(0..18) };
        docs.push(Doc {
            hash: hex_hash(&mut rng, &mut seen),
            title: title_for(&mut rng, title_domain),
            kind: Kind::Stream,
            category: c.name.clone(),
            path,
            status,
            shape: Shape::Clear { winner: home },
            discovered_at: stamp(times[i]),
            home,
            second,
            partial: status == "enriching",
            size_bytes: rng.gen_range(20_000_000..2_000_000_000),
        });
    }
    // Library documents; some share a category name with a channel, with
    // contrary domains, to catch a channel sum that forgets the source.
    let named: Vec<&Channel> = channels.iter().filter(|c| c.name.is_some() && c.name.as_deref() != Some("Transcript")).collect();
    for j in 0..n_lib {
        let (category, home) = match named.choose(&mut rng) {
            Some(c) if rng.gen_bool(0.3) => (c.name.clone(), c.second),
            _ => (Some(["survival-manuals", "field-guides", "ham-radio"][rng.gen_range(0..3)].to_string()), rng.gen_range(0..18)),
        };
        let second = other_domain(&mut rng, &[home]);
        let title = title_for(&mut rng, home);
        let file = format!("{}.pdf", title.replace([' ', ':', '/'], "_"));
        docs.push(Doc {
            hash: hex_hash(&mut rng, &mut seen),
            kind: Kind::Library,
            path: format!("/opt/recon/library/{}/{file}", category.as_deref().unwrap_or("misc")),
            title,
            category,
            status: if rng.gen_bool(0.9) { "complete" } else { "queued" },
            shape: if rng.gen_bool(0.1) { Shape::Tie { a: home, b: second, c: None } } else { Shape::Clear { winner: home } },
            discovered_at: stamp(times[spec.docs + j]),
            home,
            second,
            partial: false,
            size_bytes: rng.gen_range(100_000..80_000_000),
        });
    }

    // Exact engineered shares among complete videos.
    let mut complete: Vec<usize> = (0..spec.docs).filter(|&i| docs[i].status == "complete").collect();
    complete.shuffle(&mut rng);
    let n_re = (complete.len() as f64 * spec.reprocess_rate).round() as usize;
    let n_tie = ((complete.len() - n_re) as f64 * spec.tie_rate).round() as usize;
    for (k, &i) in complete.iter().enumerate() {
        let d = &mut docs[i];
        if k < n_re {
            d.shape = Shape::Reprocess(match rng.gen_range(0..20) {
                0..=5 => Reprocess::NoDir,
                6..=8 => Reprocess::EmptyDir,
                9..=15 => Reprocess::OnlyLegacy,
                16..=18 => Reprocess::OnlyEmptyArrays,
                _ => Reprocess::OnlyBroken,
            });
        } else if k < n_re + n_tie {
            // Usually the channel's home domain is one of the tied ones, so the
            // channel tiebreaker settles it.
            let a = if rng.gen_bool(0.75) { d.home } else { other_domain(&mut rng, &[d.home]) };
            let b = other_domain(&mut rng, &[a, d.home]);
            let c = rng.gen_bool(0.1).then(|| other_domain(&mut rng, &[a, b]));
            d.shape = Shape::Tie { a, b, c };
        } else {
            let winner = match rng.gen_range(0..20) {
                0..=13 => d.home,
                14..=16 => d.second,
                _ => rng.gen_range(0..18),
            };
            d.shape = Shape::Clear { winner };
        }
    }
    // Not-yet-processed videos: queued ones mostly have no concepts yet.
    for d in docs.iter_mut().take(spec.docs) {
        if d.status == "queued" || (d.status == "failed" && d.hash.as_bytes()[0] < b'8') {
            d.shape = Shape::Reprocess(Reprocess::NoDir);
        }
    }

    // Videos catalogued but not yet in documents (channel sizes count them).
    let mut catalogue_only = Vec::new();
    let small: Vec<&Channel> = channels.iter().filter(|c| c.name.is_some() && c.size <= 400 && c.name.as_deref() != Some("Transcript")).collect();
    for _ in 0..(spec.docs / 200) {
        if let Some(c) = small.choose(&mut rng) {
            let hash = hex_hash(&mut rng, &mut seen);
            let uuid = video_uuid(&mut rng);
            catalogue_only.push((hash, c.name.clone().unwrap_or_default(), format!("https://{}/w/{uuid}", spec.source)));
        }
    }
    Plan { channels, docs, catalogue_only }
}
