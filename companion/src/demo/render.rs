//! Writing one document's concept dir: window JSON pretty-printed as RECON's
//! Python writes it (including the malformed kinds), `meta.json` and strays.

use super::plan::{neutral_field, other_domain, Doc, DomainField, Reprocess, Shape};
use super::vocab::{DOMAIN_WORDS, FILLER, LEGACY, NON_ASCII};
use super::DemoSpec;
use crate::error::{Error, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shared_constants::DOMAINS;
use std::fs;
use std::path::Path;

/// Kinds of unusual window files, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WindowKind {
    Good,
    /// `[]`: readable, counts nothing; not malformed.
    Empty,
    Truncated,
    InvalidUtf8,
    ObjectNotArray,
    /// Nesting deeper than 128: valid for Python, so it counts.
    DeepNesting,
    /// A UTF-8 BOM before the JSON: holds no valid domain, so it cannot matter.
    Bom,
    TrailingGarbage,
}

pub(super) const MALFORMED: [WindowKind; 6] =
    [WindowKind::Truncated, WindowKind::InvalidUtf8, WindowKind::ObjectNotArray, WindowKind::DeepNesting, WindowKind::Bom, WindowKind::TrailingGarbage];
const UNREADABLE: [WindowKind; 4] = [WindowKind::Truncated, WindowKind::InvalidUtf8, WindowKind::ObjectNotArray, WindowKind::TrailingGarbage];

impl WindowKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            WindowKind::Good => "good",
            WindowKind::Empty => "empty_array",
            WindowKind::Truncated => "truncated",
            WindowKind::InvalidUtf8 => "invalid_utf8",
            WindowKind::ObjectNotArray => "object_not_array",
            WindowKind::DeepNesting => "deep_nesting",
            WindowKind::Bom => "utf8_bom",
            WindowKind::TrailingGarbage => "trailing_garbage",
        }
    }
    /// Whether RECON counts this file's concepts.
    pub(super) fn counts(self) -> bool {
        matches!(self, WindowKind::Good | WindowKind::DeepNesting)
    }
}

#[derive(Debug, Default)]
pub(super) struct FileStats {
    pub(super) windows: u64,
    pub(super) files: u64,
    pub(super) bytes: u64,
    pub(super) malformed: [u64; 6],
}

impl FileStats {
    pub(super) fn merge(mut self, o: FileStats) -> FileStats {
        self.windows += o.windows;
        self.files += o.files;
        self.bytes += o.bytes;
        for (a, b) in self.malformed.iter_mut().zip(o.malformed.iter()) {
            *a += b;
        }
        self
    }
    pub(super) fn note(&mut self, kind: WindowKind) {
        if let Some(i) = MALFORMED.iter().position(|k| *k == kind) {
            self.malformed[i] += 1;
        }
    }
}

fn doc_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    // Stream 0 is the planner's; each document gets its own, so output does
    // not depend on which thread writes it.
    r.set_stream(index as u64 + 1);
    r
}

/// Picks domain fields for the counted slots so the counts give `shape`.
fn fields_for(rng: &mut ChaCha8Rng, shape: Shape, slots: usize, home: u8, second: u8) -> Vec<DomainField> {
    let mut f: Vec<DomainField> = Vec::with_capacity(slots);
    match shape {
        Shape::Clear { winner: w } => {
            for _ in 0..slots {
                let r = rng.gen_range(0..100);
                f.push(match r {
                    0..=54 => DomainField::Label(w),
                    55..=69 => DomainField::Label(if second != w { second } else { home }),
                    70..=74 => DomainField::Label(rng.gen_range(0..18)),
                    75..=79 => DomainField::List(vec![w, other_domain(rng, &[w])]),
                    80..=82 => DomainField::ListWithLegacy(other_domain(rng, &[w]), LEGACY[rng.gen_range(0..LEGACY.len())]),
                    _ => neutral_field(rng),
                });
            }
            // Make `w` the strict winner: turn other slots into `w` until it is.
            loop {
                let mut c = [0u32; 18];
                f.iter().for_each(|x| x.add_counts(&mut c));
                let top_other = c.iter().enumerate().filter(|(i, _)| *i != w as usize).map(|(_, n)| *n).max().unwrap_or(0);
                if c[w as usize] > top_other {
                    break;
                }
                let pick = f.iter().position(|x| !x.contains(w)).or_else(|| f.iter().position(|x| *x != DomainField::Label(w)));
                match pick {
                    Some(i) => f[i] = DomainField::Label(w),
                    None => break,
                }
            }
        }
        Shape::Tie { a, b, c } => {
            let tied: Vec<u8> = [Some(a), Some(b), c].into_iter().flatten().collect();
            let k = tied.len();
            let t = rng.gen_range(1..=(slots / (k + 1)).max(1));
            for &d in &tied {
                for _ in 0..t {
                    f.push(DomainField::Label(d));
                }
            }
            // One list carrying two tied labels replaces one label of each.
            if t >= 2 && rng.gen_bool(0.3) {
                f.retain({
                    let mut dropped_a = false;
                    let mut dropped_b = false;
                    move |x| {
                        if !dropped_a && *x == DomainField::Label(a) {
                            dropped_a = true;
                            return false;
                        }
                        if !dropped_b && *x == DomainField::Label(b) {
                            dropped_b = true;
                            return false;
                        }
                        true
                    }
                });
                f.push(DomainField::List(vec![a, b]));
            }
            let mut counts = [0u32; 18];
            f.iter().for_each(|x| x.add_counts(&mut counts));
            while f.len() < slots {
                let o = other_domain(rng, &tied);
                if counts[o as usize] + 1 < t as u32 && rng.gen_bool(0.5) {
                    counts[o as usize] += 1;
                    f.push(DomainField::Label(o));
                } else {
                    f.push(neutral_field(rng));
                }
            }
        }
        Shape::Reprocess(_) => {
            for _ in 0..slots {
                f.push(neutral_field(rng));
            }
        }
    }
    f.shuffle(rng);
    f
}

pub(super) fn write_doc(concepts: &Path, spec: &DemoSpec, index: usize, doc: &Doc) -> Result<FileStats> {
    let mut st = FileStats::default();
    if doc.shape == Shape::Reprocess(Reprocess::NoDir) {
        return Ok(st);
    }
    let mut rng = doc_rng(spec.seed, index);
    let dir = concepts.join(&doc.hash);
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let put = |name: &str, bytes: &[u8], st: &mut FileStats| -> Result<()> {
        let p = dir.join(name);
        fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
        st.files += 1;
        st.bytes += bytes.len() as u64;
        Ok(())
    };

    if doc.shape == Shape::Reprocess(Reprocess::EmptyDir) {
        if rng.gen_bool(0.5) {
            put("meta.json", meta_json(doc, 0).as_bytes(), &mut st)?;
        }
        return Ok(st);
    }

    let (wmin, wmax) = spec.windows_per_doc;
    let mut n_windows = rng.gen_range(wmin..=wmax);
    if doc.partial {
        n_windows = (n_windows / 2).max(1);
    }
    // Few files, so broken-only dirs do not swamp the malformed share.
    if doc.shape == Shape::Reprocess(Reprocess::OnlyBroken) {
        n_windows = n_windows.min(2);
    }
    let (cmin, cmax) = spec.concepts_per_window;
    let mut sizes: Vec<usize> = (0..n_windows).map(|_| rng.gen_range(cmin..=cmax)).collect();
    let mut kinds: Vec<WindowKind> = (0..n_windows)
        .map(|_| {
            if rng.gen_bool(spec.malformed_rate) {
                MALFORMED[rng.gen_range(0..MALFORMED.len())]
            } else if rng.gen_bool(0.01) {
                WindowKind::Empty
            } else {
                WindowKind::Good
            }
        })
        .collect();
    match doc.shape {
        Shape::Reprocess(Reprocess::OnlyEmptyArrays) => kinds.iter_mut().for_each(|k| *k = WindowKind::Empty),
        Shape::Reprocess(Reprocess::OnlyBroken) => kinds.iter_mut().for_each(|k| *k = UNREADABLE[rng.gen_range(0..UNREADABLE.len())]),
        Shape::Clear { .. } | Shape::Tie { .. } if !kinds.iter().any(|k| k.counts()) => kinds[0] = WindowKind::Good,
        _ => {}
    }
    // A three-way tie needs at least three counted slots.
    let counted: usize = kinds.iter().zip(&sizes).filter(|(k, _)| k.counts()).map(|(_, s)| *s).sum();
    if counted < 3 {
        if let Some(i) = kinds.iter().position(|k| k.counts()) {
            sizes[i] += 3 - counted;
        }
    }
    let counted: usize = kinds.iter().zip(&sizes).filter(|(k, _)| k.counts()).map(|(_, s)| *s).sum();
    let mut fields = fields_for(&mut rng, doc.shape, counted, doc.home, doc.second).into_iter();

    let mut buf: Vec<u8> = Vec::with_capacity(spec.content_bytes * 8 * cmax);
    for (w, (&kind, &size)) in kinds.iter().zip(&sizes).enumerate() {
        buf.clear();
        let window_fields: Vec<DomainField> = if kind.counts() {
            (0..size).filter_map(|_| fields.next()).collect()
        } else if kind == WindowKind::Bom {
            (0..size).map(|_| neutral_field(&mut rng)).collect()
        } else {
            // Unread files may hold anything; valid labels here would change
            // the outcome for a reader that wrongly accepts the file.
            (0..size).map(|_| DomainField::Label(rng.gen_range(0..18))).collect()
        };
        render_window(&mut rng, &mut buf, kind, &window_fields, doc, spec.content_bytes);
        put(&format!("window_{:04}.json", w + 1), &buf, &mut st)?;
        st.windows += 1;
        st.note(kind);
    }
    if rng.gen_bool(0.9) {
        put("meta.json", meta_json(doc, n_windows).as_bytes(), &mut st)?;
    }
    // Stray files that are not windows by name and must be ignored.
    if rng.gen_bool(0.02) {
        buf.clear();
        let strays = vec![DomainField::Label(other_domain(&mut rng, &[])); 5];
        render_window(&mut rng, &mut buf, WindowKind::Good, &strays, doc, 60);
        let name = ["window_0001.json.bak", "notes.json", "window_0002.json.tmp"][rng.gen_range(0..3)];
        put(name, &buf, &mut st)?;
    }
    Ok(st)
}

fn meta_json(doc: &Doc, windows: usize) -> String {
    let mut b = Vec::new();
    b.extend_from_slice(b"{\n  \"hash\": ");
    py_str(&mut b, &doc.hash);
    b.extend_from_slice(b",\n  \"title\": ");
    py_str(&mut b, &doc.title);
    b.extend_from_slice(format!(",\n  \"windows\": {windows},\n  \"model\": \"qwen2.5-14b-instruct\",\n  \"created_at\": ").as_bytes());
    py_str(&mut b, &doc.discovered_at);
    b.extend_from_slice(b"\n}");
    String::from_utf8_lossy(&b).into_owned()
}

/// A JSON string as Python's `json.dump(..., ensure_ascii=False)` writes it.
pub(super) fn py_str(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => b.extend_from_slice(b"\\\""),
            '\\' => b.extend_from_slice(b"\\\\"),
            '\n' => b.extend_from_slice(b"\\n"),
            '\r' => b.extend_from_slice(b"\\r"),
            '\t' => b.extend_from_slice(b"\\t"),
            '\u{8}' => b.extend_from_slice(b"\\b"),
            '\u{c}' => b.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => b.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes()),
            c => {
                let mut tmp = [0u8; 4];
                b.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    b.push(b'"');
}

fn indent(b: &mut Vec<u8>, level: usize) {
    b.push(b'\n');
    b.resize(b.len() + 2 * level, b' ');
}

fn words(rng: &mut ChaCha8Rng, out: &mut String, domain: u8, target: usize) {
    let dw = DOMAIN_WORDS[domain as usize];
    let start = out.len();
    while out.len() - start < target {
        if out.len() > start {
            out.push(' ');
        }
        let r = rng.gen_range(0..100);
        out.push_str(match r {
            0..=24 => dw[rng.gen_range(0..dw.len())],
            25..=26 => NON_ASCII[rng.gen_range(0..NON_ASCII.len())],
            _ => FILLER[rng.gen_range(0..FILLER.len())],
        });
        if r == 99 {
            // Characters Python escapes.
            out.push_str(["\"quoted\"", "C:\\tools", "line\nbreak", "tab\there"][rng.gen_range(0..4)]);
        }
    }
}

/// One concept object at nesting `level` (its `{` already positioned).
fn render_concept(rng: &mut ChaCha8Rng, b: &mut Vec<u8>, level: usize, field: &DomainField, doc: &Doc, content_bytes: usize, deep: bool) {
    let voc = field.vocabulary(doc.home);
    let mut text = String::with_capacity(content_bytes + 64);
    b.push(b'{');
    indent(b, level + 1);
    b.extend_from_slice(b"\"title\": ");
    words(rng, &mut text, voc, 24);
    py_str(b, &text);
    b.push(b',');
    indent(b, level + 1);
    b.extend_from_slice(b"\"content\": ");
    text.clear();
    let jitter = content_bytes / 5;
    let target = content_bytes - jitter + rng.gen_range(0..=2 * jitter);
    words(rng, &mut text, voc, target);
    py_str(b, &text);
    b.push(b',');
    indent(b, level + 1);
    b.extend_from_slice(b"\"summary\": ");
    text.clear();
    words(rng, &mut text, voc, (content_bytes / 5).max(20));
    py_str(b, &text);
    let mut tmp = String::new();
    match field {
        DomainField::Missing => {}
        f => {
            b.push(b',');
            indent(b, level + 1);
            b.extend_from_slice(b"\"domain\": ");
            match f {
                DomainField::Label(d) => py_str(b, DOMAINS[*d as usize].label),
                DomainField::Legacy(s) => py_str(b, s),
                DomainField::Null => b.extend_from_slice(b"null"),
                DomainField::Number => b.extend_from_slice(b"106"),
                DomainField::List(ds) => {
                    let labels: Vec<&str> = ds.iter().map(|d| DOMAINS[*d as usize].label).collect();
                    str_list(b, level + 1, &labels);
                }
                DomainField::ListWithLegacy(d, legacy) => str_list(b, level + 1, &[legacy, DOMAINS[*d as usize].label]),
                DomainField::LegacyList => str_list(b, level + 1, &["Comms", "medical"]),
                DomainField::Missing => {}
            }
        }
    }
    b.push(b',');
    indent(b, level + 1);
    b.extend_from_slice(b"\"keywords\": ");
    let n_kw = rng.gen_range(0..5);
    let dw = DOMAIN_WORDS[voc as usize];
    let kws: Vec<&str> = (0..n_kw).map(|_| dw[rng.gen_range(0..dw.len())]).collect();
    str_list(b, level + 1, &kws);
    b.push(b',');
    indent(b, level + 1);
    b.extend_from_slice(b"\"confidence\": ");
    let r = rng.gen_range(0..1000);
    if r < 10 {
        b.extend_from_slice(b"NaN");
    } else if r == 10 {
        b.extend_from_slice(b"Infinity");
    } else {
        tmp.clear();
        tmp.push_str(&format!("{}", f64::from(rng.gen_range(50..=99u32)) / 100.0));
        b.extend_from_slice(tmp.as_bytes());
    }
    if deep {
        // Deeper than serde_json's 128 levels; Python reads it.
        b.push(b',');
        indent(b, level + 1);
        b.extend_from_slice(b"\"context\": ");
        let depth = rng.gen_range(130..180);
        for d in 0..depth {
            b.push(b'[');
            indent(b, level + 2 + d);
        }
        py_str(b, "deep");
        for d in (0..depth).rev() {
            indent(b, level + 1 + d);
            b.push(b']');
        }
    }
    indent(b, level);
    b.push(b'}');
}

pub(super) fn str_list(b: &mut Vec<u8>, level: usize, items: &[&str]) {
    if items.is_empty() {
        b.extend_from_slice(b"[]");
        return;
    }
    b.push(b'[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        indent(b, level + 1);
        py_str(b, s);
    }
    indent(b, level);
    b.push(b']');
}

fn render_window(rng: &mut ChaCha8Rng, b: &mut Vec<u8>, kind: WindowKind, fields: &[DomainField], doc: &Doc, content_bytes: usize) {
    match kind {
        WindowKind::Empty => {
            b.extend_from_slice(b"[]");
            return;
        }
        WindowKind::ObjectNotArray => {
            let f = fields.first().cloned().unwrap_or(DomainField::Label(doc.home));
            render_concept(rng, b, 0, &f, doc, content_bytes, false);
            return;
        }
        WindowKind::Bom => b.extend_from_slice(b"\xEF\xBB\xBF"),
        _ => {}
    }
    let deep_at = (kind == WindowKind::DeepNesting).then(|| rng.gen_range(0..fields.len().max(1)));
    b.push(b'[');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        indent(b, 1);
        // Now and then an item that is not an object: RECON skips it.
        if kind == WindowKind::Good && rng.gen_bool(0.003) {
            b.extend_from_slice(b"\"stray string item\",");
            indent(b, 1);
        }
        render_concept(rng, b, 1, f, doc, content_bytes, deep_at == Some(i));
    }
    b.push(b'\n');
    b.push(b']');
    match kind {
        WindowKind::Truncated => {
            let cut = rng.gen_range(b.len() / 10..b.len() * 9 / 10).max(1);
            b.truncate(cut);
        }
        WindowKind::InvalidUtf8 => {
            // Inside the first string value, so only the bytes are wrong.
            if let Some(p) = b.windows(10).position(|w| w == b"\"title\": \"") {
                let at = p + 10;
                b.splice(at..at, [0xFFu8, 0xFE, 0x80]);
            } else {
                b.extend_from_slice(&[0xFF, 0xFE]);
            }
        }
        WindowKind::TrailingGarbage => {
            let tail: &[u8] = [&b"\n]"[..], b"\n}\n", b"garbage", b"\n[]"][rng.gen_range(0..4)];
            b.extend_from_slice(tail);
        }
        _ => {}
    }
}
