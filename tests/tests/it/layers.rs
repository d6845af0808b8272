//! The companion's module layers, read from its `crate::` paths: no cycle between top-level modules, every edge pointing down the declared layer list, and no source file over 500 lines without its reason at the top.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules of `companion/src`, highest layer first. A module may use
/// only modules of layers below its own (never one of its own layer), so the
/// graph is acyclic by construction. docs/architecture.md explains each line.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["server", "demo"],
    &["explain"],
    &["engine", "peertube"],
    &["journal"],
    &["context"],
    &["recon"],
    &["assign", "config"],
    &["output", "support"],
    &["error"],
];

/// Source trees the 500-line rule covers (relative to the workspace root).
const SOURCE_TREES: &[&str] = &[
    "companion/src",
    "companion/tests",
    "companion/benches",
    "testkit/src",
    "tests/src",
    "tests/tests",
    "tests/benches",
    "shared-constants/src",
    "plugin-wasm/src",
];

const MAX_LINES: usize = 500;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The source with comments and string/char literals blanked (newlines kept,
/// so byte offsets still give line numbers).
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            let end = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if c == b'r' && (i == 0 || !ident(b[i - 1]) || (b[i - 1] == b'b' && (i < 2 || !ident(b[i - 2])))) && matches!(b.get(i + 1), Some(b'"' | b'#')) {
            // Raw string: r"..." or r#"..."# (also br"...").
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            let end = b[j..].windows(close.len()).position(|w| w == close.as_slice()).map_or(b.len(), |p| j + p + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if c == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            blank(&mut out, i, end);
            i = end;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\'', 'é'), or else a lifetime.
            if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                let end = (j + 1).min(b.len());
                blank(&mut out, i, end);
                i = end;
            } else if let Some(ch) = src[i + 1..].chars().next() {
                let after = i + 1 + ch.len_utf8();
                if b.get(after) == Some(&b'\'') {
                    blank(&mut out, i, after + 1);
                    i = after + 1;
                } else {
                    i += 1;
                }
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Path, // ::
    Open,
    Close,
    Comma,
    Other(char),
}

fn tokens(s: &str) -> Vec<(Tok, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(s[start..i].to_string()), line));
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push((
                match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    other => Tok::Other(other),
                },
                line,
            ));
            i += ch.len_utf8();
        }
    }
    out
}

/// One reference from a file to a top-level module.
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    file: String,
    line: usize,
}

/// The first segments a path names after position `i` (just past a `::`):
/// one identifier, or each member of a `{...}` group.
fn heads(toks: &[(Tok, usize)], i: usize) -> Vec<(String, usize)> {
    match toks.get(i) {
        Some((Tok::Ident(name), line)) => vec![(name.clone(), *line)],
        Some((Tok::Open, _)) => {
            let mut out = Vec::new();
            let (mut depth, mut j, mut at_member) = (0usize, i + 1, true);
            while let Some((t, line)) = toks.get(j) {
                match t {
                    Tok::Open => depth += 1,
                    Tok::Close if depth == 0 => break,
                    Tok::Close => depth -= 1,
                    Tok::Comma if depth == 0 => at_member = true,
                    Tok::Ident(name) if depth == 0 && at_member => {
                        out.push((name.clone(), *line));
                        at_member = false;
                    }
                    _ => at_member = false,
                }
                j += 1;
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Which top-level modules `file` (module path `module`, e.g. `["peertube", "push"]`) refers to.
fn references(src: &str, module: &[String], top: &BTreeSet<String>) -> Vec<(String, usize)> {
    let toks = tokens(&strip(src));
    let mut out = Vec::new();
    // Inline `mod name { ... }` blocks: (name, brace depth inside them).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Open => depth += 1,
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(kw) if kw == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Open, _))) = (toks.get(i + 1), toks.get(i + 2)) {
                    inline.push((name.clone(), depth + 1));
                }
            }
            Tok::Ident(kw) if kw == "crate" && toks.get(i + 1).is_some_and(|t| t.0 == Tok::Path) => {
                let macro_crate = i > 0 && toks[i - 1].0 == Tok::Other('$');
                let path_tail = i > 0 && toks[i - 1].0 == Tok::Path;
                if !macro_crate && !path_tail {
                    out.extend(heads(&toks, i + 2).into_iter().filter(|(h, _)| top.contains(h)));
                }
            }
            Tok::Ident(kw) if kw == "super" && !(i > 0 && toks[i - 1].0 == Tok::Path) => {
                let mut path: Vec<String> = module.iter().cloned().chain(inline.iter().map(|(n, _)| n.clone())).collect();
                let mut j = i;
                while matches!(&toks.get(j), Some((Tok::Ident(k), _)) if k == "super") && toks.get(j + 1).is_some_and(|t| t.0 == Tok::Path) {
                    path.pop();
                    j += 2;
                }
                if j == i {
                    i += 1; // `pub(super)`, not a path
                    continue;
                }
                if path.is_empty() {
                    out.extend(heads(&toks, j).into_iter().filter(|(h, _)| top.contains(h)));
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Top-level modules declared in lib.rs.
fn top_modules(lib: &str) -> BTreeSet<String> {
    let toks = tokens(&strip(lib));
    toks.windows(3)
        .filter_map(|w| match (&w[0].0, &w[1].0, &w[2].0) {
            (Tok::Ident(m), Tok::Ident(name), Tok::Other(';')) if m == "mod" => Some(name.clone()),
            _ => None,
        })
        .collect()
}

fn edges() -> (BTreeSet<String>, Vec<Edge>) {
    let root = workspace().join("companion/src");
    let lib = fs::read_to_string(root.join("lib.rs")).expect("companion/src/lib.rs");
    let top = top_modules(&lib);
    assert!(top.len() >= 10, "lib.rs declares too few modules for this reader: {top:?}");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&root).expect("under src");
        let mut module: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
        let last = module.pop().unwrap_or_default();
        let stem = last.trim_end_matches(".rs");
        if module.is_empty() && (stem == "lib" || stem == "main") {
            continue; // the crate roots: lib.rs only declares, main.rs is the binary crate
        }
        if stem != "mod" {
            module.push(stem.to_string());
        }
        let from = module[0].clone();
        let src = fs::read_to_string(&f).expect("readable source");
        for (to, line) in references(&src, &module, &top) {
            if to != from {
                out.push(Edge { from: from.clone(), to, file: format!("companion/src/{}", rel.display()), line });
            }
        }
    }
    (top, out)
}

/// A cycle of the module graph, if any (as a path whose last module is its first).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(n: &str, graph: &BTreeMap<String, BTreeSet<String>>, state: &mut BTreeMap<String, u8>, stack: &mut Vec<String>) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let start = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if !state.contains_key(n.as_str()) {
            let mut stack = Vec::new();
            if let Some(c) = visit(n, graph, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn reader_sees_paths_in_groups_super_and_not_in_comments_or_strings() {
    let top: BTreeSet<String> = ["assign", "config", "recon", "engine"].iter().map(|s| s.to_string()).collect();
    let src = r##"
use crate::{assign::Status, config};
// use crate::engine::x;
/* crate::engine::y /* nested */ crate::engine::z */
const S: &str = "crate::engine::w";
const R: &str = r#"crate::engine::v"#;
const C: char = '"';
fn f<'a>(x: &'a str) { let _ = super::super::recon::db::open(x); }
mod tests { use super::*; }
"##;
    let mut got: Vec<String> = references(src, &["engine".into(), "run".into()], &top).into_iter().map(|(m, _)| m).collect();
    got.sort();
    assert_eq!(got, ["assign", "config", "recon"]);
    // One `super` from a file of a top-level module's folder stays inside that module.
    assert!(references("use super::journal;", &["engine".into(), "run".into()], &top).is_empty());
}

#[test]
fn module_graph_has_no_cycle_and_points_down_the_layers() {
    let (top, edges) = edges();
    let layer_of: BTreeMap<&str, usize> = LAYERS.iter().enumerate().flat_map(|(i, l)| l.iter().map(move |m| (*m, i))).collect();
    let declared: BTreeSet<String> = layer_of.keys().map(|s| s.to_string()).collect();
    let mut problems = Vec::new();
    if declared != top {
        problems.push(format!(
            "LAYERS must list exactly lib.rs's modules: missing {:?}, not in lib.rs {:?}",
            top.difference(&declared).collect::<Vec<_>>(),
            declared.difference(&top).collect::<Vec<_>>()
        ));
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = top.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for e in &edges {
        graph.entry(e.from.clone()).or_default().insert(e.to.clone());
    }
    if let Some(cycle) = find_cycle(&graph) {
        let mut msg = format!("module cycle: {}", cycle.join(" -> "));
        for pair in cycle.windows(2) {
            if let Some(e) = edges.iter().find(|e| e.from == pair[0] && e.to == pair[1]) {
                msg.push_str(&format!("\n    {} -> {} at {}:{}", e.from, e.to, e.file, e.line));
            }
        }
        problems.push(msg);
    }
    for e in &edges {
        match (layer_of.get(e.from.as_str()), layer_of.get(e.to.as_str())) {
            (Some(a), Some(b)) if b > a => {}
            (Some(_), Some(_)) => problems.push(format!("{}:{}: {} uses {}, which is not in a lower layer", e.file, e.line, e.from, e.to)),
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{} layering problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn no_source_file_over_500_lines_without_its_reason_at_the_top() {
    let ws = workspace();
    let mut files = Vec::new();
    for t in SOURCE_TREES {
        rust_files(&ws.join(t), &mut files);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut long = Vec::new();
    for f in &files {
        let src = fs::read_to_string(f).expect("readable source");
        let lines = src.lines().count();
        if lines <= MAX_LINES {
            continue;
        }
        // The reason belongs to the file's leading `//!` doc comment.
        let stated = src.lines().take_while(|l| l.starts_with("//!")).any(|l| l.contains("over 500 lines"));
        if !stated {
            long.push(format!("{} ({lines} lines): no \"over 500 lines\" reason in its leading //! comment", f.strip_prefix(&ws).unwrap_or(f).display()));
        }
    }
    assert!(long.is_empty(), "files over {MAX_LINES} lines without their reason:\n{}", long.join("\n"));
}
