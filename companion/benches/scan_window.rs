//! Single-thread throughput of `pyjson::scan_window` on realistic pretty-printed window files.
//!
//! `cargo bench -p recon-companion --bench scan_window` prints MB/s. The files
//! mimic RECON's enricher output (`json.dump(indent=2, ensure_ascii=False)`):
//! about 6 concept objects per window with an ~800-byte `content`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use std::hint::black_box;
use std::time::Instant;

use companion::recon::pyjson::scan_window;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const WORDS: &[&str] = &[
    "water",
    "filter",
    "boil",
    "the",
    "and",
    "for",
    "with",
    "ration",
    "shelter",
    "insulation",
    "battery",
    "inverter",
    "radio",
    "antenna",
    "map",
    "compass",
    "splint",
    "wound",
    "tourniquet",
    "seed",
    "soil",
    "caf\u{e9}",
    "\u{2014}",
    "storage",
    "canning",
    "\\\"quoted\\\"",
    "\\n",
    "50%",
    "12V",
    "(see above)",
];

fn text(rng: &mut ChaCha8Rng, bytes: usize) -> String {
    let mut s = String::new();
    while s.len() < bytes {
        s.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
        s.push(if rng.gen_bool(0.08) { '.' } else { ' ' });
    }
    s
}

fn window(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let labels: Vec<&str> = shared_constants::all().map(|d| d.label).collect();
    let mut out = String::from("[");
    let n = rng.gen_range(4..9);
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        let label = labels[rng.gen_range(0..labels.len())];
        out.push_str(&format!(
            "\n  {{\n    \"title\": \"{}\",\n    \"content\": \"{}\",\n    \"summary\": \"{}\",\n    \"domain\": \"{}\",\n    \"keywords\": [\n      \"{}\",\n      \"{}\"\n    ],\n    \"confidence\": {:.2},\n    \"window\": {}\n  }}",
            text(rng, 40),
            text(rng, 800),
            text(rng, 150),
            label,
            text(rng, 8),
            text(rng, 8),
            rng.gen_range(0.0..1.0),
            rng.gen_range(1..40),
        ));
    }
    out.push_str("\n]");
    out.into_bytes()
}

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let files: Vec<Vec<u8>> = (0..4000).map(|_| window(&mut rng)).collect();
    let total: usize = files.iter().map(Vec::len).sum();
    let mb = total as f64 / 1e6;
    for f in &files {
        assert!(scan_window(f).is_ok(), "generated window must be valid");
    }

    let best = |f: &dyn Fn() -> u64| {
        (0..7)
            .map(|_| {
                let t = Instant::now();
                black_box(f());
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let t_scan = best(&|| files.iter().map(|f| scan_window(black_box(f)).map_or(0, |c| c.items)).sum());
    let t_utf8 = best(&|| files.iter().filter(|f| simdutf8::basic::from_utf8(black_box(f)).is_ok()).count() as u64);
    println!(
        "scan_window: {} files, {:.1} MB (avg {:.0} B/file): {:.1} ms, {:.0} MB/s single thread (utf-8 check alone: {:.0} MB/s)",
        files.len(),
        mb,
        total as f64 / files.len() as f64,
        t_scan * 1e3,
        mb / t_scan,
        mb / t_utf8
    );
    println!("=> 600 MB of concept JSON would take {:.2} s of parsing on one core", 600.0 / (mb / t_scan));

    // The same files on disk (page cache), read and scanned by `scan_docs`
    // on every core: what one backfill pays for its concept files.
    let root = tempfile::tempdir().expect("tempdir");
    let docs = 2000;
    let mut hashes = Vec::with_capacity(docs);
    let mut bytes = 0usize;
    for d in 0..docs {
        let h = format!("{d:032x}");
        let dir = root.path().join(&h);
        std::fs::create_dir(&dir).expect("mkdir");
        for w in 0..6 {
            let f = &files[(d * 6 + w) % files.len()];
            bytes += f.len();
            std::fs::write(dir.join(format!("window_{:04}.json", w + 1)), f).expect("write");
        }
        std::fs::write(dir.join("meta.json"), "{}").expect("write");
        hashes.push(h);
    }
    let t_docs = best(&|| companion::recon::concepts::scan_docs(root.path(), &hashes).iter().map(|s| s.total()).sum());
    println!(
        "scan_docs: {docs} docs, {} files, {:.1} MB on disk, {} threads: {:.1} ms, {:.0} docs/s, {:.0} MB/s",
        docs * 6,
        bytes as f64 / 1e6,
        rayon::current_num_threads(),
        t_docs * 1e3,
        docs as f64 / t_docs,
        bytes as f64 / 1e6 / t_docs
    );
}
