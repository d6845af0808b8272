//! Differential test: `companion::recon::pyjson::scan_window` against CPython's `json` on thousands of random, mutated window files.
//!
//! Runs `python3 tests/python/count_domains.py DIR` once over a directory of
//! generated files and requires the Rust scanner to agree on every file:
//! same label counts, item counts, or the same error class. python3 missing is
//! a failure, not a skip. Also pins the one deliberate divergence (nesting
//! deeper than CPython's ~990 levels) and runs the Python reference
//! engine's self-test (tests/python/test_recon_reference.py).
//!
//! One file over 500 lines on purpose: one differential harness (the window
//! generator, its mutations and the single python3 run) that every case shares.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use companion::recon::pyjson::{scan_window, Invalid};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use shared_constants::DOMAINS;

const FILES: usize = 3000;
const SEED: u64 = 0x5EC0_2026;

/// A JSON value whose strings are kept as raw (already escaped) text, so the
/// generator can emit any escape Python accepts.
enum V {
    Raw(String), // numbers and literals, written as is
    Str(String),
    Arr(Vec<V>),
    Obj(Vec<(String, V)>),
}

fn write_v(out: &mut String, v: &V, indent: Option<usize>, level: usize) {
    let nl = |out: &mut String, lvl: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * lvl));
        }
    };
    let sep = if indent.is_some() { ", " } else { "," };
    match v {
        V::Raw(s) => out.push_str(s),
        V::Str(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        V::Arr(items) if items.is_empty() => out.push_str("[]"),
        V::Obj(items) if items.is_empty() => out.push_str("{}"),
        V::Arr(items) => {
            out.push('[');
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(if indent.is_some() { "," } else { sep });
                }
                nl(out, level + 1);
                write_v(out, it, indent, level + 1);
            }
            nl(out, level);
            out.push(']');
        }
        V::Obj(items) => {
            out.push('{');
            for (i, (k, it)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(if indent.is_some() { "," } else { sep });
                }
                nl(out, level + 1);
                let _ = write!(out, "\"{k}\": ");
                write_v(out, it, indent, level + 1);
            }
            nl(out, level);
            out.push('}');
        }
    }
}

struct Gen {
    rng: ChaCha8Rng,
}

const LEGACY: &[&str] = &[
    "Survival",
    "Food",
    "Water",
    "medical",
    "MEDICAL",
    "Agriculture and Livestock",
    "Food & Systems",
    "Tools &amp; Equipment",
    "Medical ",
    " Medical",
    "Civil  Organization",
    "",
    "Shelter",
    "Comms",
];

impl Gen {
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        *xs.choose(&mut self.rng).expect("non-empty")
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.gen_bool(p)
    }

    /// Raw string content with a realistic mix of text, non-ASCII and escapes.
    fn text(&mut self, max_pieces: usize) -> String {
        const PIECES: &[&str] = &[
            "water",
            "filter",
            "the ",
            "and ",
            "Boil for one minute. ",
            "caf\u{e9}",
            "\u{4e2d}\u{6587}",
            "\u{1F525}",
            "\\n",
            "\\n\\n",
            "\\t",
            "\\\"",
            "\\\\",
            "\\/",
            "\\b",
            "\\f",
            "\\r",
            "\\u00e9",
            "\\u0026",
            "\\uD83D\\uDE00",
            "\\ud800",
            "\\udc00",
            "\\uABCD",
            "\\u0041",
            " ",
            "  ",
            "&",
            "'",
            "\u{7f}",
            "{",
            "[",
            "]",
            "}",
            ":",
            ",",
        ];
        let n = self.rng.gen_range(0..=max_pieces);
        (0..n).map(|_| self.pick(PIECES)).collect()
    }

    fn number(&mut self) -> String {
        match self.rng.gen_range(0..10) {
            0 => "0".into(),
            1 => format!("-{}", self.rng.gen_range(0..100000)),
            2 => format!("{}.{}", self.rng.gen_range(0..1000), self.rng.gen_range(0..1000)),
            3 => format!("{}e{}", self.rng.gen_range(1..10), self.rng.gen_range(-30..30)),
            4 => format!("-0.{}E+{}", self.rng.gen_range(0..99), self.rng.gen_range(0..9)),
            5 => "NaN".into(),
            6 => "Infinity".into(),
            7 => "-Infinity".into(),
            8 => "1".repeat(self.pick(&[4299usize, 4300, 4301, 5000])),
            _ => self.rng.gen_range(0..1_000_000u64).to_string(),
        }
    }

    fn scalar(&mut self) -> V {
        match self.rng.gen_range(0..6) {
            0 => V::Raw("null".into()),
            1 => V::Raw("true".into()),
            2 => V::Raw("false".into()),
            3 => V::Str(self.text(6)),
            _ => V::Raw(self.number()),
        }
    }

    fn nested(&mut self, depth: usize) -> V {
        let mut v = self.scalar();
        for _ in 0..depth {
            v = if self.chance(0.5) { V::Arr(vec![v]) } else { V::Obj(vec![("k".into(), v)]) };
        }
        v
    }

    fn any(&mut self, budget: usize) -> V {
        if budget == 0 || self.chance(0.5) {
            return self.scalar();
        }
        let n = self.rng.gen_range(0..4);
        if self.chance(0.5) {
            V::Arr((0..n).map(|_| self.any(budget - 1)).collect())
        } else {
            V::Obj((0..n).map(|i| (format!("f{i}"), self.any(budget - 1))).collect())
        }
    }

    /// A label written as raw string content, possibly escaped.
    fn label_raw(&mut self) -> String {
        let l = self.pick(&DOMAINS).label;
        match self.rng.gen_range(0..10) {
            0 => l.replace('&', "\\u0026"),
            1 => {
                // Escape one ASCII character as \uXXXX (or \/ which is not in any label).
                let i = self.rng.gen_range(0..l.len());
                let c = l.as_bytes()[i];
                format!("{}\\u{:04x}{}", &l[..i], c, &l[i + 1..])
            }
            2 => l.to_lowercase(),
            3 => self.pick(LEGACY).to_string(),
            4 => format!("{l}\\u00a0"),
            _ => l.to_string(),
        }
    }

    fn domain(&mut self) -> Option<V> {
        Some(match self.rng.gen_range(0..20) {
            0 => return None,
            1 => V::Raw("null".into()),
            2 => V::Raw(self.number()),
            3 => V::Obj(vec![("domain".into(), V::Str(self.pick(&DOMAINS).label.into()))]),
            4..=6 => {
                let n = self.rng.gen_range(0..5);
                V::Arr((0..n).map(|_| if self.chance(0.75) { V::Str(self.label_raw()) } else { self.any(2) }).collect())
            }
            _ => V::Str(self.label_raw()),
        })
    }

    fn domain_key(&mut self) -> String {
        self.pick(&["domain", "domain", "domain", "domain", "dom\\u0061in", "\\u0064omain", "Domain", "domains"]).to_string()
    }

    fn concept(&mut self) -> V {
        let mut fields =
            vec![("title".to_string(), V::Str(self.text(4))), ("content".to_string(), V::Str(self.text(60))), ("summary".to_string(), V::Str(self.text(10)))];
        if let Some(d) = self.domain() {
            let k = self.domain_key();
            fields.push((k, d));
        }
        if self.chance(0.2) {
            // Duplicate key: Python keeps the last.
            if let Some(d) = self.domain() {
                fields.push(("domain".to_string(), d));
            }
        }
        if self.chance(0.3) {
            fields.push(("score".to_string(), V::Raw(self.number())));
        }
        if self.chance(0.2) {
            fields.push(("extra".to_string(), self.any(3)));
        }
        if self.chance(0.05) {
            let d = self.rng.gen_range(100..500);
            fields.push(("deep".to_string(), self.nested(d)));
        }
        fields.shuffle(&mut self.rng);
        V::Obj(fields)
    }

    fn window(&mut self) -> V {
        if self.chance(0.04) {
            // Valid JSON that is not an array.
            return if self.chance(0.5) { self.concept() } else { self.scalar() };
        }
        let n = self.rng.gen_range(0..8);
        V::Arr((0..n).map(|_| if self.chance(0.9) { self.concept() } else { self.any(2) }).collect())
    }

    fn file(&mut self) -> (Vec<u8>, &'static str) {
        let v = self.window();
        let mut s = String::new();
        let indent = self.pick(&[Some(2), Some(4), None]);
        write_v(&mut s, &v, indent, 0);
        if self.chance(0.3) {
            s.push('\n');
        }
        let mut b = s.into_bytes();
        let kind = self.mutate(&mut b);
        (b, kind)
    }

    fn mutate(&mut self, b: &mut Vec<u8>) -> &'static str {
        if self.chance(0.55) || b.is_empty() {
            return "pristine";
        }
        let len = b.len();
        let at = self.rng.gen_range(0..len);
        match self.rng.gen_range(0..14) {
            0 => {
                b.truncate(at);
                "truncate"
            }
            1 | 2 => {
                let c = self.pick(b"\"\\,:[]{}0 e.-\x01\x1f\tNI");
                b[at] = c;
                "flip"
            }
            3 => {
                let c = self.pick(b"\"\\,:[]{}0 .\x0c");
                b.insert(at, c);
                "insert"
            }
            4 => {
                b.remove(at);
                "delete"
            }
            5 => {
                b.splice(0..0, *b"\xEF\xBB\xBF");
                "bom"
            }
            6 => {
                let bad: &[u8] = self.pick(&[&b"\xFF"[..], b"\xC3", b"\xED\xA0\x80", b"\xF4\x90\x80\x80", b"\x80"]);
                // Put it inside a string when possible so only the encoding is wrong.
                let pos = b.iter().position(|&c| c == b'"').map_or(at, |p| p + 1);
                b.splice(pos..pos, bad.iter().copied());
                "bad_utf8"
            }
            7 => {
                b.extend_from_slice(self.pick(&[&b" x"[..], b"]", b",", b"\x00", b" \t\r\n ", b"[]", "\u{a0}".as_bytes()]));
                "trailing"
            }
            8 => {
                b.splice(0..0, self.pick(&[&b" \n\t\r"[..], b"\x0c", b"\xC2\xA0"]).iter().copied());
                "leading"
            }
            9 => {
                // Replace a number-ish spot with a Python-invalid number.
                let bad = self.pick(&["01", "1.", "-", "1e", ".5", "+1", "1.e3", "-01", "nan", "infinity", "-Inf"]);
                let s = String::from_utf8_lossy(b).into_owned();
                let replaced = match s.find(": ") {
                    Some(p) => format!("{}: {bad}, \"zz\": {}", &s[..p], &s[p + 2..]),
                    None => format!("[{bad}]"),
                };
                *b = replaced.into_bytes();
                "bad_number"
            }
            10 => {
                let s = String::from_utf8_lossy(b).replacen("\\n", self.pick(&["\\x", "\\u12", "\\U0041", "\\'", "\\ud800\\u00zz", "\n", "\t"]), 1);
                *b = s.into_bytes();
                "bad_escape"
            }
            11 => {
                let d = self.rng.gen_range(100..500);
                let inner = format!("{}{}", "[".repeat(d), "]".repeat(d - usize::from(self.chance(0.3))));
                b.splice(0..0, format!("[{inner},").into_bytes());
                if !b.ends_with(b"]") {
                    b.push(b']');
                }
                "deep"
            }
            12 => {
                let s = String::from_utf8_lossy(b).replacen(",\n", ",,\n", 1).replacen("}\n", "},\n", 1);
                *b = s.into_bytes();
                "comma"
            }
            _ => {
                *b = self.pick(&[&b""[..], b"[]", b"  ", b"[", b"{}", b"null", b"[NaN]", b"[-Infinity, Infinity]"]).to_vec();
                "tiny"
            }
        }
    }
}

/// Rust's result in the Python script's output shape.
fn rust_json(bytes: &[u8]) -> Value {
    match scan_window(bytes) {
        Ok(fc) => {
            let mut counts = Map::new();
            for (d, &n) in DOMAINS.iter().zip(fc.counts.iter()) {
                if n > 0 {
                    counts.insert(d.label.to_string(), json!(n));
                }
            }
            json!({"counts": counts, "items": fc.items, "non_objects": fc.non_objects, "no_valid_domain": fc.no_valid_domain})
        }
        Err(Invalid::NotUtf8) => json!({"error": "not_utf8"}),
        Err(Invalid::Malformed(_)) => json!({"error": "malformed"}),
        Err(Invalid::NotArray) => json!({"error": "not_array"}),
    }
}

fn python(args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/count_domains.py");
    let out =
        Command::new("python3").arg(&script).args(args).output().unwrap_or_else(|e| panic!("python3 is required for this test and could not be run: {e}"));
    assert!(out.status.success(), "count_domains.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("count_domains.py printed JSON")
}

#[test]
fn python_uses_the_same_labels() {
    let labels: Vec<&str> = DOMAINS.iter().map(|d| d.label).collect();
    assert_eq!(python(&["--labels"]), json!(labels));
}

/// Writes `files` into a temp dir, runs Python once, and returns the
/// mismatches and the count of each outcome.
fn compare(files: &[(String, Vec<u8>)], seed: u64) -> (Vec<String>, std::collections::BTreeMap<String, usize>, usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write window");
    }
    let dir_path = dir.path().to_str().expect("utf-8 temp path");
    let py = python(&[dir_path]);
    let py = py.as_object().expect("object of results");
    assert_eq!(py.len(), files.len());

    let mut mismatches = Vec::new();
    let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
    let mut counted = 0;
    for (name, bytes) in files {
        let ours = rust_json(bytes);
        let theirs = py.get(name).unwrap_or_else(|| panic!("python skipped {name}"));
        let key = ours.get("error").and_then(Value::as_str).unwrap_or("valid").to_string();
        *outcomes.entry(key).or_default() += 1;
        if ours.get("counts").and_then(Value::as_object).is_some_and(|c| !c.is_empty()) {
            counted += 1;
        }
        if &ours != theirs {
            let head = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
            mismatches.push(format!("seed {seed} {name}: rust {ours} python {theirs}\n  {head:?} ({:?})", scan_window(bytes)));
        }
    }
    (mismatches, outcomes, counted)
}

fn seed() -> u64 {
    // PYJSON_DIFF_SEED explores other corpora locally; the default is fixed so CI is reproducible.
    std::env::var("PYJSON_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED)
}

#[test]
fn scan_window_agrees_with_python_json() {
    let seed = seed();
    let mut g = Gen { rng: ChaCha8Rng::seed_from_u64(seed) };
    let files: Vec<(String, Vec<u8>)> = (0..FILES)
        .map(|i| {
            let (bytes, kind) = g.file();
            (format!("window_{i:05}_{kind}.json"), bytes)
        })
        .collect();
    let (mismatches, outcomes, counted) = compare(&files, seed);
    eprintln!("outcomes: {outcomes:?}; files with counts: {counted}");
    assert!(mismatches.is_empty(), "{} of {FILES} files differ:\n{}", mismatches.len(), mismatches[..mismatches.len().min(10)].join("\n"));
    // The corpus must exercise every outcome, or agreement proves little.
    for (kind, min) in [("valid", 1000), ("malformed", 300), ("not_utf8", 30), ("not_array", 30)] {
        let n = outcomes.get(kind).copied().unwrap_or(0);
        assert!(n >= min, "only {n} {kind} files (want >= {min}): {outcomes:?}");
    }
    assert!(counted >= 800, "only {counted} files with label counts");
}

/// Short token soup: finds edge cases of literals, numbers, escapes and
/// delimiters that realistic files rarely hit.
#[test]
fn token_soup_agrees_with_python_json() {
    const TOKENS: &[&str] = &[
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        "\"",
        "\"domain\"",
        "\"Medical\"",
        "\"Tools \\u0026 Equipment\"",
        "0",
        "1",
        "-",
        ".",
        "e",
        "E",
        "+",
        "9",
        "NaN",
        "Infinity",
        "-Infinity",
        "Inf",
        "null",
        "nul",
        "true",
        "false",
        " ",
        "\n",
        "\t",
        "\r",
        "\u{0c}",
        "\\",
        "\\u",
        "\\ud800",
        "\\n",
        "\\x",
        "u",
        "0041",
        "\u{1}",
        "\u{e9}",
        "\u{ff}",
        "{}",
        "[]",
        "{\"domain\": ",
        "{\"dom\\u0061in\":\"Medical\"}",
        "{\"domain\":[\"Medical\",",
        "\"Medical\"]}",
        "\"\\ud800\"",
        "\"a\\\"b\"",
    ];
    let seed = seed();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xA5A5);
    let mut files = Vec::new();
    for i in 0..4000 {
        // An array of short elements, each one to three tokens, so that a
        // good share is valid and the rest fails in one specific place.
        let mut s = String::from(if rng.gen_bool(0.9) { "[" } else { "" });
        for e in 0..rng.gen_range(0..5) {
            if e > 0 {
                s.push_str(if rng.gen_bool(0.9) { ", " } else { "" });
            }
            let k = if rng.gen_bool(0.6) { 1 } else { rng.gen_range(2..4) };
            for _ in 0..k {
                s.push_str(TOKENS.choose(&mut rng).expect("tokens"));
            }
        }
        if rng.gen_bool(0.9) {
            s.push(']');
        }
        files.push((format!("soup_{i:05}.json"), s.into_bytes()));
    }
    let (mismatches, outcomes, _) = compare(&files, seed);
    eprintln!("soup outcomes: {outcomes:?}");
    assert!(mismatches.is_empty(), "{} soup files differ:\n{}", mismatches.len(), mismatches[..mismatches.len().min(10)].join("\n"));
    assert!(outcomes.get("valid").copied().unwrap_or(0) >= 400, "{outcomes:?}");
}

/// Python's `json` stops near depth 990 with `RecursionError` (RECON would
/// skip or crash on such a file); `scan_window` accepts any depth on purpose,
/// `scan_window_max_depth(.., PYTHON_MAX_DEPTH)` follows Python. This pins both.
#[test]
fn deep_nesting_versus_python() {
    use companion::recon::pyjson::{scan_window_max_depth, PYTHON_MAX_DEPTH};
    let file = |d: usize| -> Vec<u8> { format!("[{{\"domain\": \"Medical\", \"deep\": {}1{}}}]", "[".repeat(d - 2), "]".repeat(d - 2)).into_bytes() };
    let depths = [129, 500, 900, 980, 1200, 5000];
    let files: Vec<(String, Vec<u8>)> = depths.iter().map(|d| (format!("deep_{d:05}.json"), file(*d))).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in &files {
        std::fs::write(dir.path().join(name), bytes).expect("write");
    }
    let py = python(&[dir.path().to_str().expect("utf-8 temp path")]);
    for ((name, bytes), d) in files.iter().zip(depths) {
        let python_ok = py[name.as_str()].get("error").is_none();
        assert_eq!(python_ok, d <= 980, "python at depth {d}: {}", py[name.as_str()]);
        assert_eq!(scan_window_max_depth(bytes, PYTHON_MAX_DEPTH).is_ok(), python_ok, "depth {d}");
        assert!(scan_window(bytes).is_ok(), "scan_window accepts depth {d}");
    }
}

/// The Python reference engine's own tests (tests/python/test_recon_reference.py).
#[test]
fn recon_reference_self_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let out = Command::new("python3")
        .args(["-m", "unittest", "-q", "test_recon_reference"])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("python3 is required for this test and could not be run: {e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
