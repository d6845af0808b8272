//! `explain` and `spot-check` on small hand-built RECON data dirs: one test per
//! rule path, the lookups, bad targets, skipped files and stale assignments.
//!
//! One file over 500 lines on purpose: one test per rule path, all on the same
//! small data-dir builder at the top of the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use companion::assign::{Rule, Status};
use companion::context::Env;
use companion::explain::{explain, spot_check, Class, Explanation};
use companion::recon::db as recondb;
use companion::Error;
use rusqlite::{params, Connection};
use std::fs;
use tempfile::TempDir;

const SOURCE: &str = "stream.echo6.co";

/// RECON's own tables, as RECON creates them.
use companion::recon::schema::RECON_SCHEMA;

struct Fx {
    _dir: TempDir,
    env: Env,
}

fn h(n: u32) -> String {
    format!("{n:032x}")
}

fn uuid(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

/// A window file's JSON: `n` concepts for each (domain, n).
fn concepts(pairs: &[(&str, usize)]) -> String {
    let items: Vec<String> =
        pairs.iter().flat_map(|&(d, n)| std::iter::repeat_n(format!("{{\"title\": \"t\", \"content\": \"c\", \"domain\": \"{d}\"}}"), n)).collect();
    format!("[\n{}\n]", items.join(",\n"))
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("recon.db");
        let concepts_dir = dir.path().join("concepts");
        fs::create_dir(&concepts_dir).expect("mkdir");
        let mut conn = Connection::open(&db).expect("open");
        conn.execute_batch(RECON_SCHEMA).expect("schema");
        recondb::migrate(&mut conn).expect("migrate");
        let env = Env {
            recon_db: db,
            concepts_dir,
            reports_dir: dir.path().join("reports"),
            quarantine_dir: dir.path().join("quarantine"),
            source: SOURCE.into(),
            mega_threshold: 500,
            mega_skip: vec!["Transcript".into()],
            progress: false,
            concepts: Default::default(),
            second_source: None,
        };
        Fx { _dir: dir, env }
    }

    fn rw(&self) -> Connection {
        Connection::open(&self.env.recon_db).expect("open rw")
    }

    /// A PeerTube video: catalogue row with the stream source and a complete documents row.
    fn video(&self, hash: &str, channel: Option<&str>, video_id: &str, title: Option<&str>) {
        let conn = self.rw();
        conn.execute(
            "INSERT INTO catalogue(hash, filename, path, source, category) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![hash, format!("{hash}.mp4"), format!("https://stream.echo6.co/w/{video_id}"), SOURCE, channel],
        )
        .expect("catalogue");
        conn.execute("INSERT INTO documents(hash, filename, book_title, status) VALUES (?1, ?2, ?3, 'complete')", params![hash, format!("{hash}.mp4"), title])
            .expect("documents");
    }

    /// Many channel-mates in one transaction (catalogue rows only).
    fn catalogue_rows(&self, hashes: &[String], channel: &str, source: &str) {
        let mut conn = self.rw();
        let tx = conn.transaction().expect("tx");
        for hash in hashes {
            tx.execute(
                "INSERT INTO catalogue(hash, filename, path, source, category) VALUES (?1, 'f', ?2, ?3, ?4)",
                params![hash, format!("https://stream.echo6.co/w/{hash}"), source, channel],
            )
            .expect("catalogue");
        }
        tx.commit().expect("commit");
    }

    fn store(&self, hash: &str, status: &str, domain: Option<&str>) {
        let n = self
            .rw()
            .execute(
                "UPDATE documents SET recon_domain_status = ?2, recon_domain = ?3, recon_domain_assigned_at = '2024-05-01T10:00:00+00:00' WHERE hash = ?1",
                params![hash, status, domain],
            )
            .expect("store");
        assert_eq!(n, 1);
    }

    fn window(&self, hash: &str, name: &str, content: impl AsRef<[u8]>) {
        let d = self.env.concepts_dir.join(hash);
        fs::create_dir_all(&d).expect("mkdir");
        fs::write(d.join(name), content).expect("write");
    }

    fn explain(&self, target: &str) -> companion::Result<Explanation> {
        let conn = recondb::open_readonly(&self.env.recon_db)?;
        explain(&self.env, &conn, target)
    }

    fn ok(&self, target: &str) -> Explanation {
        match self.explain(target) {
            Ok(e) => e,
            Err(err) => panic!("explain {target}: {err}"),
        }
    }
}

fn counts_of(list: &[companion::explain::DomainCount]) -> Vec<(&'static str, u64)> {
    list.iter().map(|d| (d.domain, d.count)).collect()
}

#[test]
fn clear_winner_with_per_window_counts() {
    let fx = Fx::new();
    let doc = h(1);
    fx.video(&doc, Some("Prep Channel"), &uuid(1), Some("Field dressing"));
    fx.window(&doc, "window_0001.json", concepts(&[("Medical", 3), ("Security", 1)]));
    fx.window(&doc, "window_0002.json", concepts(&[("Medical", 2), ("Water Systems", 1)]));
    fx.window(&doc, "meta.json", concepts(&[("Security", 50)]));
    fx.store(&doc, "assigned", Some("Medical"));

    let e = fx.ok(&doc);
    assert_eq!(e.title.as_deref(), Some("Field dressing"));
    assert_eq!(e.channel.as_deref(), Some("Prep Channel"));
    assert_eq!(e.source.as_deref(), Some(SOURCE));
    assert_eq!(e.document_status.as_deref(), Some("complete"));
    assert_eq!(e.stored.domain.as_deref(), Some("Medical"));
    assert_eq!(e.stored.assigned_at.as_deref(), Some("2024-05-01T10:00:00+00:00"));
    assert!(e.concept_dir_found);
    assert_eq!(e.windows.len(), 2, "meta.json is not a window");
    assert_eq!(counts_of(&e.windows[0].counts), [("Medical", 3), ("Security", 1)]);
    assert_eq!(counts_of(&e.windows[1].counts), [("Medical", 2), ("Water Systems", 1)]);
    assert_eq!(counts_of(&e.totals), [("Medical", 5), ("Security", 1), ("Water Systems", 1)]);
    assert_eq!(e.total_valid, 7);
    assert_eq!(e.rule, Rule::ClearWinner);
    assert_eq!((e.outcome.status, e.outcome.domain), (Status::Assigned, Some("Medical")));
    assert!(e.tie.is_none());
    assert!(!e.stale, "{}", e.staleness.message);
    assert!(e.reason.contains("5 of 7") && e.reason.contains("4 more"), "{}", e.reason);
    // The JSON the dashboard reads.
    let v = serde_json::to_value(&e).expect("json");
    assert_eq!(v["rule"], "clear_winner");
    assert_eq!(v["outcome"]["status"], "assigned");
    assert_eq!(v["totals"][0]["id"], 106);
}

/// A tied video in a normal channel: the channel's other videos decide.
#[test]
fn tie_resolved_by_channel_lists_top_contributors() {
    let fx = Fx::new();
    let doc = h(1);
    fx.video(&doc, Some("Prep"), &uuid(1), Some("Mixed bag"));
    fx.window(&doc, "window_0001.json", concepts(&[("Medical", 2), ("Security", 2), ("Water Systems", 1)]));
    // Seven mates: Security leads the channel among the tied domains, and the
    // channel's own biggest domain (Vehicles) is not tied, so it must not matter.
    let mates: [(u32, &[(&str, usize)]); 7] = [
        (10, &[("Security", 5)]),
        (11, &[("Security", 1), ("Medical", 1)]),
        (12, &[("Medical", 2)]),
        (13, &[("Vehicles", 40)]),
        (14, &[("Security", 3), ("Medical", 1)]),
        (15, &[("Medical", 1)]),
        (16, &[("Security", 1)]),
    ];
    for (n, pairs) in mates {
        fx.video(&h(n), Some("Prep"), &uuid(n), Some(&format!("mate {n}")));
        fx.window(&h(n), "window_0001.json", concepts(pairs));
    }
    // Same channel name but another source: not a channel-mate.
    fx.catalogue_rows(&[h(99)], "Prep", "library");
    fx.window(&h(99), "window_0001.json", concepts(&[("Medical", 100)]));
    fx.store(&doc, "tied_pass_2", Some("Security"));

    let e = fx.ok(&doc);
    assert_eq!(e.pass1.status, Status::TiedPass1);
    assert_eq!(e.rule, Rule::Channel);
    assert_eq!((e.outcome.status, e.outcome.domain), (Status::TiedPass2, Some("Security")));
    // One spelling everywhere: the JSON says what the database stores.
    let v = serde_json::to_value(&e).expect("json");
    assert_eq!((&v["pass1"]["status"], &v["outcome"]["status"], &v["stored"]["status"]), (&"tied_pass_1".into(), &"tied_pass_2".into(), &"tied_pass_2".into()));
    let t = e.tie.as_ref().expect("tie");
    assert_eq!(t.tied, ["Medical", "Security"]);
    assert_eq!(t.tied_count, 2);
    assert_eq!(t.channel_size, 8);
    assert!(!t.mega && t.mega_reason.is_none());
    assert_eq!(t.mates_counted, 7);
    assert_eq!(counts_of(t.channel_counts.as_deref().expect("counts")), [("Medical", 5), ("Security", 10)]);
    assert_eq!(t.channel_margin, Some(5));
    let top: Vec<(&str, u64)> = t.top_contributors.iter().map(|c| (c.hash.as_str(), c.total)).collect();
    let (h10, h14, h11, h12, h15) = (h(10), h(14), h(11), h(12), h(15));
    assert_eq!(top, [(h10.as_str(), 5), (h14.as_str(), 4), (h11.as_str(), 2), (h12.as_str(), 2), (h15.as_str(), 1)]);
    assert_eq!(t.top_contributors[0].title.as_deref(), Some("mate 10"));
    assert_eq!(counts_of(&t.top_contributors[1].counts), [("Medical", 1), ("Security", 3)]);
    assert!(!e.stale, "{}", e.staleness.message);
    assert_eq!(e.staleness.compared_with, Some("tiebreaker"));
}

fn tied_doc_in(fx: &Fx, channel: &str, mates: u32) -> String {
    let doc = h(1);
    fx.video(&doc, Some(channel), &uuid(1), Some("tied"));
    fx.window(&doc, "window_0001.json", concepts(&[("Security", 2), ("Medical", 2)]));
    let hashes: Vec<String> = (1000..1000 + mates).map(h).collect();
    fx.catalogue_rows(&hashes, channel, SOURCE);
    // One mate favours Security: only read when the channel is not mega.
    fx.window(&hashes[0], "window_0001.json", concepts(&[("Security", 9)]));
    doc
}

#[test]
fn mega_channel_by_threshold_is_strict_and_never_reads_mates() {
    // 1 + 500 = 501 PeerTube rows: mega.
    let fx = Fx::new();
    let doc = tied_doc_in(&fx, "Big", 500);
    fx.store(&doc, "tied_manual", Some("Medical"));
    let e = fx.ok(&doc);
    assert_eq!(e.rule, Rule::MegaChannel);
    assert_eq!((e.outcome.status, e.outcome.domain), (Status::TiedManual, Some("Medical")));
    let t = e.tie.as_ref().expect("tie");
    assert!(t.mega);
    assert_eq!(t.channel_size, 501);
    assert!(t.mega_reason.as_deref().is_some_and(|r| r.contains("501") && r.contains("500")), "{:?}", t.mega_reason);
    assert_eq!(t.channel_counts, None);
    assert_eq!(t.mates_counted, 0);
    assert!(t.top_contributors.is_empty());
    assert!(!e.stale, "{}", e.staleness.message);

    // 1 + 499 = 500 rows: not mega, the mate's Security decides.
    let fx = Fx::new();
    let doc = tied_doc_in(&fx, "Big", 499);
    let e = fx.ok(&doc);
    let t = e.tie.as_ref().expect("tie");
    assert!(!t.mega);
    assert_eq!(t.channel_size, 500);
    assert_eq!(e.rule, Rule::Channel);
    assert_eq!(e.outcome.domain, Some("Security"));
    assert_eq!(t.top_contributors.len(), 1);
    // Nothing stored yet: not stale, and it says what would be stored.
    assert!(!e.stale);
    assert!(e.staleness.message.contains("tied_pass_2 / Security"), "{}", e.staleness.message);
}

#[test]
fn mega_channel_by_skip_list() {
    let fx = Fx::new();
    let doc = tied_doc_in(&fx, "Transcript", 3);
    let e = fx.ok(&doc);
    assert_eq!(e.rule, Rule::MegaChannel);
    let t = e.tie.as_ref().expect("tie");
    assert!(t.mega && t.channel_size == 4);
    assert!(t.mega_reason.as_deref().is_some_and(|r| r.contains("skip list")), "{:?}", t.mega_reason);
    assert_eq!(e.outcome.domain, Some("Medical"));
}

#[test]
fn alphabetical_fallback_takes_first_of_all_tied() {
    let fx = Fx::new();
    let doc = h(1);
    fx.video(&doc, Some("Garage"), &uuid(1), None);
    fx.window(&doc, "window_0001.json", concepts(&[("Vehicles", 1), ("Security", 1), ("Agriculture & Livestock", 1)]));
    fx.video(&h(2), Some("Garage"), &uuid(2), None);
    fx.window(&h(2), "window_0001.json", concepts(&[("Vehicles", 7), ("Security", 7)]));
    fx.store(&doc, "tied_manual", Some("Agriculture & Livestock"));
    let e = fx.ok(&doc);
    assert_eq!(e.title.as_deref(), Some(format!("{doc}.mp4").as_str()), "no book_title: catalogue filename");
    assert_eq!(e.rule, Rule::AlphabeticalFallback);
    assert_eq!((e.outcome.status, e.outcome.domain), (Status::TiedManual, Some("Agriculture & Livestock")));
    let t = e.tie.as_ref().expect("tie");
    assert_eq!(t.tied, ["Agriculture & Livestock", "Security", "Vehicles"]);
    assert_eq!(counts_of(t.channel_counts.as_deref().expect("counts")), [("Agriculture & Livestock", 0), ("Security", 7), ("Vehicles", 7)]);
    assert_eq!(t.channel_margin, None);
    assert!(!e.stale, "{}", e.staleness.message);
    assert!(e.reason.contains("does not settle"), "{}", e.reason);
}

#[test]
fn no_channel_tie_falls_back() {
    let fx = Fx::new();
    let doc = h(1);
    fx.video(&doc, None, &uuid(1), None);
    fx.window(&doc, "window_0001.json", concepts(&[("Security", 1), ("Medical", 1)]));
    let e = fx.ok(&doc);
    assert_eq!(e.rule, Rule::AlphabeticalFallback);
    assert_eq!(e.outcome.domain, Some("Medical"));
    assert!(e.reason.contains("no channel"), "{}", e.reason);
}

#[test]
fn no_valid_domain_missing_dir_and_legacy_only() {
    let fx = Fx::new();
    fx.video(&h(1), Some("C"), &uuid(1), None);
    fx.store(&h(1), "needs_reprocess", None);
    let e = fx.ok(&h(1));
    assert!(!e.concept_dir_found);
    assert_eq!(e.rule, Rule::NoValidDomain);
    assert_eq!(e.outcome.status, Status::NeedsReprocess);
    assert!(e.totals.is_empty() && e.windows.is_empty());
    assert!(!e.stale);
    assert!(e.reason.contains("No concept dir"), "{}", e.reason);

    fx.video(&h(2), Some("C"), &uuid(2), None);
    fx.window(&h(2), "window_0001.json", r#"[{"domain": "medical"}, {"domain": "Survival"}, {"title": "x"}]"#);
    fx.window(&h(2), "window_0002.json", "[]");
    let e = fx.ok(&h(2));
    assert!(e.concept_dir_found);
    assert_eq!(e.rule, Rule::NoValidDomain);
    assert_eq!(e.windows.len(), 2);
    assert_eq!(e.skipped_no_valid_domain_items, 3);
    assert_eq!(e.total_valid, 0);
}

#[test]
fn skipped_files_are_reported_with_reasons() {
    let fx = Fx::new();
    let doc = h(1);
    fx.video(&doc, Some("C"), &uuid(1), None);
    fx.window(&doc, "window_0001.json", r#"[{"domain": "Medical"}, 3, {"domain": ["Security", "Medical"]}, {"domain": "old"}]"#);
    fx.window(&doc, "window_0002.json", r#"[{"domain": "Medical"}"#);
    fx.window(&doc, "window_0003.json", r#"{"domain": "Medical"}"#);
    fx.window(&doc, "window_0004.json", b"[{\"domain\": \"Medical\", \"x\": \"\xff\"}]");
    fs::create_dir(fx.env.concepts_dir.join(&doc).join("window_0005.json")).expect("mkdir");
    fx.window(&doc, "window_0006.json", r#"[{"domain": "Security", "score": NaN}]"#);
    let e = fx.ok(&doc);
    let skipped: Vec<(&str, &str)> = e.skipped_files.iter().map(|s| (s.file.as_str(), s.kind)).collect();
    assert_eq!(
        skipped,
        [("window_0002.json", "malformed"), ("window_0003.json", "not_array"), ("window_0004.json", "not_utf8"), ("window_0005.json", "unreadable"),]
    );
    assert!(e.skipped_files[0].reason.contains("byte"), "{}", e.skipped_files[0].reason);
    let counted: Vec<&str> = e.windows.iter().map(|w| w.file.as_str()).collect();
    assert_eq!(counted, ["window_0001.json", "window_0006.json"], "NaN is valid for Python's json");
    assert_eq!(e.skipped_non_object_items, 1);
    assert_eq!(e.skipped_no_valid_domain_items, 1);
    assert_eq!(counts_of(&e.totals), [("Medical", 2), ("Security", 2)]);
    assert_eq!(e.rule, Rule::AlphabeticalFallback);
}

#[test]
fn lookup_by_uuid_short_uuid_and_url() {
    let fx = Fx::new();
    let long = "a44521d0-0fb8-4ade-8002-3385545c3318";
    let short = "mhvXdrZT4jP5T8vBxuvm75";
    // One video stored with its long uuid, one with its short uuid.
    fx.video(&h(1), Some("C"), long, Some("long form"));
    fx.video(&h(2), Some("C"), "1111111111111111111112", Some("short form"));
    fx.window(&h(1), "window_0001.json", concepts(&[("Medical", 1)]));
    for target in [
        long.to_string(),
        long.to_uppercase(),
        short.to_string(),
        format!("https://stream.echo6.co/w/{long}"),
        format!("https://stream.echo6.co/w/{short}?start=12#t"),
        format!("  stream.echo6.co/w/{short}/ "),
        h(1).to_uppercase(),
    ] {
        assert_eq!(fx.ok(&target).hash, h(1), "{target}");
    }
    // The long form of a video stored by its short uuid.
    assert_eq!(fx.ok("00000000-0000-0000-0000-000000000001").hash, h(2));
    assert_eq!(fx.ok("https://stream.echo6.co/w/1111111111111111111112").title.as_deref(), Some("short form"));
}

#[test]
fn bad_or_unknown_targets_give_clear_errors() {
    let fx = Fx::new();
    fx.video(&h(1), Some("C"), &uuid(1), None);
    // "0123456789abcdef0123456789abcdeg" was here: one safe path component, it
    // is now a well-formed hash of no document (NotFound, below).
    for bad in ["", "../../etc/passwd", "hello world", "https://stream.echo6.co/videos/watch/123", "https://x/w/", "a.b", "a".repeat(129).as_str(), "caf\u{e9}"]
    {
        match fx.explain(bad) {
            Err(e @ Error::BadTarget(_)) => {
                assert_eq!(e.exit_code(), 2);
                assert!(e.to_string().contains("not a document hash"), "{e}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    for absent in [h(7), "0123456789abcdef0123456789abcdeg".to_string(), "x".to_string(), "e".repeat(64)] {
        match fx.explain(&absent) {
            Err(e @ Error::NotFound(_)) => assert!(e.to_string().contains(&absent), "{e}"),
            other => panic!("{other:?}"),
        }
    }
    match fx.explain(&uuid(7)) {
        Err(e @ Error::NotFound(_)) => assert!(e.to_string().contains("/w/"), "{e}"),
        other => panic!("{other:?}"),
    }
    // A uuid that appears inside another video's path but not as its tail.
    fx.catalogue_rows(&[h(3)], "C", SOURCE);
    fx.rw().execute("UPDATE catalogue SET path = ?2 WHERE hash = ?1", params![h(3), format!("https://x/w/{}/extra", uuid(8))]).expect("update");
    assert!(matches!(fx.explain(&uuid(8)), Err(Error::NotFound(_))));
}

#[test]
fn stale_assignment_after_a_window_changes() {
    let fx = Fx::new();
    let doc = h(1);
    fx.video(&doc, Some("C"), &uuid(1), None);
    fx.window(&doc, "window_0001.json", concepts(&[("Medical", 3), ("Security", 1)]));
    fx.store(&doc, "assigned", Some("Medical"));
    assert!(!fx.ok(&doc).stale);

    fx.window(&doc, "window_0001.json", concepts(&[("Medical", 1), ("Security", 4)]));
    let e = fx.ok(&doc);
    assert!(e.stale);
    assert_eq!(e.staleness.compared_with, Some("pass1"));
    assert!(e.staleness.message.contains("STALE") && e.staleness.message.contains("assigned / Security"), "{}", e.staleness.message);

    // Now a tie: still stale for `assigned`, and it says what the tiebreaker would do.
    fx.window(&doc, "window_0001.json", concepts(&[("Medical", 2), ("Security", 2)]));
    let e = fx.ok(&doc);
    assert!(e.stale);
    assert!(e.staleness.message.contains("tied_pass_1") && e.staleness.message.contains("tiebreaker would then store"), "{}", e.staleness.message);

    // A person's choice is never stale.
    fx.store(&doc, "manual_assigned", Some("Water Systems"));
    let e = fx.ok(&doc);
    assert!(!e.stale && e.staleness.message.contains("person"), "{}", e.staleness.message);

    // needs_reprocess whose files now carry a domain.
    fx.video(&h(2), Some("C"), &uuid(2), None);
    fx.store(&h(2), "needs_reprocess", None);
    assert!(!fx.ok(&h(2)).stale);
    fx.window(&h(2), "window_0001.json", concepts(&[("Logistics", 1)]));
    assert!(fx.ok(&h(2)).stale);
}

#[test]
fn stale_tiebreak_when_the_channel_changes() {
    let fx = Fx::new();
    let doc = h(1);
    fx.video(&doc, Some("C"), &uuid(1), None);
    fx.window(&doc, "window_0001.json", concepts(&[("Medical", 2), ("Security", 2)]));
    fx.video(&h(2), Some("C"), &uuid(2), None);
    fx.window(&h(2), "window_0001.json", concepts(&[("Security", 3)]));
    fx.store(&doc, "tied_pass_2", Some("Security"));
    assert!(!fx.ok(&doc).stale);
    fx.window(&h(2), "window_0001.json", concepts(&[("Medical", 3)]));
    let e = fx.ok(&doc);
    assert!(e.stale, "{}", e.staleness.message);
    assert_eq!(e.outcome.domain, Some("Medical"));
}

#[test]
fn history_shows_journaled_changes() {
    let fx = Fx::new();
    let doc = h(1);
    fx.video(&doc, Some("C"), &uuid(1), None);
    fx.window(&doc, "window_0001.json", concepts(&[("Medical", 2)]));
    let conn = fx.rw();
    companion::journal::record(
        &conn,
        "run-1",
        companion::journal::Kind::Documents,
        &doc,
        &serde_json::json!({"recon_domain": null, "recon_domain_status": null}),
        &serde_json::json!({"recon_domain": "Medical", "recon_domain_status": "assigned"}),
        companion::journal::EntryState::Applied,
    )
    .expect("journal");
    let e = fx.ok(&doc);
    assert_eq!(e.history.len(), 1);
    assert_eq!(e.history[0].run_id, "run-1");
    assert_eq!(e.history[0].to_domain.as_deref(), Some("Medical"));
    assert_eq!(e.history[0].from_status, None);
}

#[test]
fn explain_works_on_an_unmigrated_db() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("recon.db");
    let conn = Connection::open(&db).expect("open");
    conn.execute_batch(RECON_SCHEMA).expect("schema");
    conn.execute("INSERT INTO documents(hash, filename, status) VALUES (?1, 'a.mp4', 'complete')", [h(1)]).expect("doc");
    let env = Env {
        recon_db: db.clone(),
        concepts_dir: dir.path().join("concepts"),
        reports_dir: dir.path().join("r"),
        quarantine_dir: dir.path().join("q"),
        source: SOURCE.into(),
        mega_threshold: 500,
        mega_skip: vec![],
        progress: false,
        concepts: Default::default(),
        second_source: None,
    };
    let ro = recondb::open_readonly(&db).expect("ro");
    let e = explain(&env, &ro, &h(1)).expect("explain");
    assert!(!e.migrated && e.stored.status.is_none() && !e.stale);
    assert!(matches!(spot_check(&env, &ro, "assigned", 5, Some(1)), Err(Error::NotMigrated(_))));
}

fn spot_fixture() -> Fx {
    let fx = Fx::new();
    // 30 assigned: even hashes clear (Medical 5 vs Security 1), odd narrow (Medical 3 vs Security 2).
    for n in 1..=30u32 {
        fx.video(&h(n), Some("C"), &uuid(n), Some(&format!("doc {n}")));
        let pairs: &[(&str, usize)] = if n % 2 == 0 { &[("Medical", 5), ("Security", 1)] } else { &[("Medical", 3), ("Security", 2)] };
        fx.window(&h(n), "window_0001.json", concepts(pairs));
        fx.store(&h(n), "assigned", Some("Medical"));
    }
    fx
}

#[test]
fn spot_check_is_deterministic_and_classifies() {
    let fx = spot_fixture();
    let conn = recondb::open_readonly(&fx.env.recon_db).expect("ro");
    let a = spot_check(&fx.env, &conn, "assigned", 10, Some(7)).expect("spot");
    let b = spot_check(&fx.env, &conn, "assigned", 10, Some(7)).expect("spot");
    let c = spot_check(&fx.env, &conn, "assigned", 10, Some(8)).expect("spot");
    let hashes = |s: &companion::explain::SpotCheck| s.verdicts.iter().map(|v| v.hash.clone()).collect::<Vec<_>>();
    assert_eq!(hashes(&a), hashes(&b));
    assert_ne!(hashes(&a), hashes(&c));
    assert_eq!(a.verdicts.len(), 10);
    assert_eq!((a.available, a.seed, a.seed_given), (30, 7, true));
    for v in &a.verdicts {
        let n = u32::from_str_radix(&v.hash, 16).expect("hex");
        if n % 2 == 0 {
            assert_eq!(v.class, Class::Clear, "{v:?}");
            assert_eq!((v.margin, v.runner_up), (Some(4), Some("Security")));
            assert!(v.share.is_some_and(|s| (s - 5.0 / 6.0).abs() < 1e-9));
        } else {
            assert_eq!(v.class, Class::Narrow, "{v:?}");
            assert_eq!(v.margin, Some(1));
        }
        assert!(!v.stale);
    }
    let s = a.summary;
    assert_eq!(s.clear + s.narrow, 10);
    assert_eq!(s.stale, 0);
    // Without a seed one is chosen and reported.
    let r = spot_check(&fx.env, &conn, "assigned", 3, None).expect("spot");
    assert!(!r.seed_given);
    let again = spot_check(&fx.env, &conn, "assigned", 3, Some(r.seed)).expect("spot");
    assert_eq!(hashes(&r), hashes(&again));
    // More than available: all of them.
    assert_eq!(spot_check(&fx.env, &conn, "assigned", 100, Some(1)).expect("spot").verdicts.len(), 30);
    assert!(spot_check(&fx.env, &conn, "tied_pass_2", 5, Some(1)).expect("spot").verdicts.is_empty());
    assert!(matches!(spot_check(&fx.env, &conn, "Assigned", 5, Some(1)), Err(Error::BadTarget(_))));
}

#[test]
fn spot_check_counts_stale_and_share_below_half() {
    let fx = spot_fixture();
    // A large margin but under half the concepts: narrow.
    fx.window(
        &h(2),
        "window_0001.json",
        concepts(&[("Medical", 4), ("Security", 1), ("Vehicles", 1), ("Logistics", 1), ("Water Systems", 1), ("Tools & Equipment", 1)]),
    );
    // Files now favour Security: stale.
    fx.window(&h(4), "window_0001.json", concepts(&[("Security", 5)]));
    let conn = recondb::open_readonly(&fx.env.recon_db).expect("ro");
    let all = spot_check(&fx.env, &conn, "assigned", 30, Some(1)).expect("spot");
    let by = |n: u32| all.verdicts.iter().find(|v| v.hash == h(n)).expect("sampled");
    assert_eq!((by(2).class, by(2).margin), (Class::Narrow, Some(3)));
    assert!(by(4).stale && by(4).note.contains("STALE"));
    assert_eq!(by(4).share, Some(0.0));
    assert_eq!(all.summary.stale, 1);
}

#[test]
fn spot_check_tied_pass_2_judges_the_channel_lead() {
    let fx = Fx::new();
    fx.video(&h(1), Some("C"), &uuid(1), None);
    fx.window(&h(1), "window_0001.json", concepts(&[("Medical", 2), ("Security", 2)]));
    fx.video(&h(2), Some("D"), &uuid(2), None);
    fx.window(&h(2), "window_0001.json", concepts(&[("Medical", 2), ("Security", 2)]));
    fx.video(&h(3), Some("C"), &uuid(3), None);
    fx.window(&h(3), "window_0001.json", concepts(&[("Security", 6), ("Medical", 1)]));
    fx.video(&h(4), Some("D"), &uuid(4), None);
    fx.window(&h(4), "window_0001.json", concepts(&[("Security", 2), ("Medical", 1)]));
    fx.store(&h(1), "tied_pass_2", Some("Security"));
    fx.store(&h(2), "tied_pass_2", Some("Security"));
    let conn = recondb::open_readonly(&fx.env.recon_db).expect("ro");
    let s = spot_check(&fx.env, &conn, "tied_pass_2", 5, Some(3)).expect("spot");
    assert_eq!(serde_json::to_value(&s).expect("json")["status"], "tied_pass_2");
    assert_eq!(s.verdicts.len(), 2);
    assert_eq!((s.verdicts[0].class, s.verdicts[0].channel_margin), (Class::Clear, Some(5)));
    assert_eq!((s.verdicts[1].class, s.verdicts[1].channel_margin), (Class::Narrow, Some(1)));
    assert_eq!(s.summary.stale, 0);
}

#[test]
fn a_target_that_is_both_a_hash_and_a_short_uuid_is_a_document_first() {
    let fx = Fx::new();
    let short = "mhvXdrZT4jP5T8vBxuvm75";
    let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    // A document whose hash is the short uuid, and a video stored under that uuid.
    fx.video(short, Some("C"), &uuid(1), Some("hash named like a uuid"));
    fx.window(short, "window_0001.json", concepts(&[("Security", 2)]));
    fx.video(&h(1), Some("C"), short, Some("the video"));
    let e = fx.ok(short);
    assert_eq!((e.hash.as_str(), e.title.as_deref()), (short, Some("hash named like a uuid")));
    assert!(e.concept_dir_found);
    assert_eq!(counts_of(&e.totals), [("Security", 2)]);
    // Through its URL it can only be the video.
    assert_eq!(fx.ok(&format!("https://stream.echo6.co/w/{short}")).hash, h(1));
    // Without a document of that hash, the same 22 characters name the video.
    let other = "1111111111111111111112";
    fx.video(&h(2), Some("C"), other, Some("short only"));
    assert_eq!(fx.ok(other).hash, h(2));
    // A sha256-named document is explained from its own concept dir.
    fx.video(sha, Some("D"), &uuid(3), None);
    fx.window(sha, "window_0001.json", concepts(&[("Medical", 3), ("Logistics", 1)]));
    let e = fx.ok(sha);
    assert!(e.concept_dir_found && e.concept_dir.as_deref().is_some_and(|d| d.ends_with(sha)), "{:?}", e.concept_dir);
    assert_eq!(counts_of(&e.totals), [("Medical", 3), ("Logistics", 1)]);
    assert_eq!(e.outcome.domain, Some("Medical"));
}
