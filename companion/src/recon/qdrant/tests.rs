//! Unit tests of the Qdrant client's counting and page parsing.

use super::*;

fn idx(label: &str) -> usize {
    index_of_label(label).unwrap_or(usize::MAX)
}

#[test]
fn domain_rule_matches_recon_files() {
    let mut c = Counts::default();
    assert_eq!(count_domain(Some(&json!("Medical")), &mut c), 1);
    assert_eq!(count_domain(Some(&json!("medical")), &mut c), 0);
    assert_eq!(count_domain(Some(&json!("Science & Technology")), &mut c), 0);
    assert_eq!(count_domain(Some(&json!(["Medical", "bogus", 7, null, "Medical", ["Logistics"]])), &mut c), 2);
    assert_eq!(count_domain(Some(&json!({"label": "Medical"})), &mut c), 0);
    assert_eq!(count_domain(None, &mut c), 0);
    assert_eq!(c[idx("Medical")], 3);
    assert_eq!(c.iter().sum::<u64>(), 3);
}

/// The parsed path counts exactly as `count_domain` on a `Value` does.
#[test]
fn parsed_points_count_as_count_domain() {
    let domains = [
        json!("Medical"),
        serde_json::from_str::<Value>(r#""Medic\u0061l""#).unwrap_or_default(),
        json!("medical"),
        json!(["Medical", "bogus", 7, null, "Medical", ["Logistics"], {"a": "Medical"}]),
        json!({"label": "Medical"}),
        json!(null),
        json!(3.5),
        json!(true),
        json!([]),
    ];
    for d in domains {
        let text =
            format!(r#"{{"result": {{"points": [{{"id": 1, "payload": {{"doc_hash": ["h", 5, ["h2"]], "domain": {d}}}}}], "next_page_offset": null}}}}"#);
        let page: ScrollEnvelope = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let points = page.result.and_then(|r| r.points).unwrap_or_default();
        let mut m = HashMap::new();
        add_point(&mut m, &points[0], None::<&HashSet<&str>>);
        let mut want = Counts::default();
        count_domain(Some(&d), &mut want);
        assert_eq!(m.len(), 1, "{text}");
        assert_eq!((m["h"].counts, m["h"].points), (want, 1), "{d}");
    }
    // No doc_hash, a number, null or an object: the point matches nothing.
    for h in [json!(null), json!(5), json!({"x": "h"})] {
        let text = json!({"payload": {"doc_hash": h, "domain": "Medical"}}).to_string();
        let p: Point = serde_json::from_str(&text).unwrap_or_default();
        let mut m = HashMap::new();
        add_point(&mut m, &p, None::<&HashSet<&str>>);
        assert!(m.is_empty());
    }
    let text = json!({"payload": {"domain": "Medical"}}).to_string();
    let p: Point = serde_json::from_str(&text).unwrap_or_default();
    let mut m = HashMap::new();
    add_point(&mut m, &p, None::<&HashSet<&str>>);
    assert!(m.is_empty());
}

#[test]
fn saturates_instead_of_overflowing() {
    let mut c = Counts::default();
    c[idx("Medical")] = u64::MAX;
    count_domain(Some(&json!("Medical")), &mut c);
    assert_eq!(c[idx("Medical")], u64::MAX);
}

#[test]
fn a_list_doc_hash_counts_once_per_distinct_wanted_hash() {
    let mut m = HashMap::new();
    let wanted: HashSet<&str> = ["a", "b"].into_iter().collect();
    let text = json!({"id": 1, "payload": {"doc_hash": ["a", "a", "b", "z"], "domain": "Medical"}}).to_string();
    let p: Point = serde_json::from_str(&text).unwrap_or_default();
    add_point(&mut m, &p, Some(&wanted));
    assert_eq!(m.len(), 2);
    assert_eq!(m["a"].points, 1);
    assert_eq!(m["b"].counts[idx("Medical")], 1);
}

#[test]
fn settings_round_trip_without_the_key() {
    let s = QdrantSettings { api_key: Some("secret".into()), ..QdrantSettings::default() };
    let text = toml::to_string(&s).unwrap_or_default();
    assert!(text.contains("timeout_secs = 60"), "{text}");
    assert!(!text.contains("secret"));
    let back: QdrantSettings = toml::from_str(&text).unwrap_or_default();
    assert_eq!(back, QdrantSettings::default());
    assert!(toml::from_str::<QdrantSettings>("api_key = \"x\"").is_err());
}

#[test]
fn rejects_unusable_settings() {
    for s in [
        QdrantSettings { page_size: 0, ..QdrantSettings::default() },
        QdrantSettings { hashes_per_request: 0, ..QdrantSettings::default() },
        QdrantSettings { url: "localhost:6333".into(), ..QdrantSettings::default() },
    ] {
        assert!(matches!(QdrantClient::new(s), Err(Error::Config(_))));
    }
}

#[test]
fn strict_mode_refusals_name_the_cap() {
    assert_eq!(strict_mode_limit(r#"Bad request: Limit exceeded 5000 > 1000 for "limit""#), Some(1000));
    // Qdrant 1.19's own wording, help included.
    let real = r#"Bad request: Limit exceeded 3 > 2 for "limit". Help: Reduce the "limit" parameter to or below 2."#;
    assert_eq!(strict_mode_limit(real), Some(2));
    let status = |msg: &str| Failure::Status { code: 400, retry_after: None, msg: msg.to_string() };
    assert_eq!(refusal(&status(real)), Some(Refusal::Limit(2)));
    let size = "Bad request: Condition size limit reached (3 > 2). Help: Reduce the size of your condition.";
    assert_eq!(refusal(&status(size)), Some(Refusal::ConditionSize(2)));
    let index = r#"Bad request: Index required but not found for "doc_hash" of one of the following types: [keyword]. Help: Create an index for this key or use a different filter."#;
    assert_eq!(refusal(&status(index)), Some(Refusal::IndexRequired));
    assert_eq!(refusal(&Failure::Status { code: 500, retry_after: None, msg: size.to_string() }), None);
    assert_eq!(refusal(&status("Format error in JSON body: invalid type")), None);
    assert_eq!(strict_mode_limit(r#"Limit exceeded 6 > 5 for "limit""#), Some(5));
    // Another field's cap, a zero cap, or another 400: not a page-size problem.
    assert_eq!(strict_mode_limit(r#"Limit exceeded 9 > 5 for "hnsw_ef""#), None);
    assert_eq!(strict_mode_limit(r#"Limit exceeded 6 > 0 for "limit""#), None);
    assert_eq!(strict_mode_limit("Format error in JSON body: invalid type"), None);
}

#[test]
fn the_next_offset_is_read_from_the_tail() {
    let page = br#"{"result":{"points":[{"id":1,"payload":{"domain":{"next_page_offset":99}}}],"next_page_offset":12345},"status":"ok","time":0.001}"#;
    let tail_offset = |b: &[u8]| tail_value(b, b"\"next_page_offset\":");
    assert_eq!(tail_offset(page), Some(json!(12345)));
    assert_eq!(tail_value(page, b"\"time\":"), Some(json!(0.001)));
    let uuid = br#"{"result":{"points":[],"next_page_offset":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26"},"status":"ok","time":0.1,"usage":{"cpu":1}}"#;
    assert_eq!(tail_offset(uuid), Some(json!("5c56c793-69f3-4fbf-87e6-c4bf54c28c26")));
    assert_eq!(tail_offset(br#"{"result":{"points":[],"next_page_offset":null},"status":"ok"}"#), Some(Value::Null));
    // Pretty-printed or absent: no guess (the page is then read without prefetch).
    assert_eq!(tail_offset(br#"{"result":{"points":[],"next_page_offset" : 5}}"#), None);
    assert_eq!(tail_offset(b"not json"), None);
    let mut seen = 0;
    assert_eq!(visit_page(page, &mut |_| seen += 1).ok().flatten(), Some(json!(12345)));
    assert_eq!(seen, 1);
}

#[test]
fn auto_reads_most_of_a_collection_in_one_pass_even_with_an_index() {
    let info = |indexed: bool| CollectionInfo {
        status: "green".into(),
        points_count: Some(770_000),
        indexed_fields: if indexed { BTreeSet::from(["doc_hash".to_string()]) } else { BTreeSet::new() },
        strict: None,
        write_marks: None,
    };
    let (plain, indexed) = (info(false), info(true));
    // Few documents: filtered, index or not, and no estimate asked.
    assert!(!Strategy::Auto.wants_share(&indexed, 512, 256));
    assert_eq!(Strategy::Auto.resolve(&plain, 512, 256, None), Strategy::Filtered);
    // Many documents without an index: one scroll, no estimate.
    assert!(!Strategy::Auto.wants_share(&plain, 21_000, 256));
    assert_eq!(Strategy::Auto.resolve(&plain, 21_000, 256, None), Strategy::ScrollAll);
    // With an index, the estimated share decides.
    assert!(Strategy::Auto.wants_share(&indexed, 21_000, 256));
    assert_eq!(Strategy::Auto.resolve(&indexed, 21_000, 256, Some(0.94)), Strategy::ScrollAll);
    assert_eq!(Strategy::Auto.resolve(&indexed, 21_000, 256, Some(0.2)), Strategy::Filtered);
    // An explicit choice is kept.
    assert!(!Strategy::Filtered.wants_share(&indexed, 21_000, 256));
    assert_eq!(Strategy::Filtered.resolve(&plain, 21_000, 256, Some(0.94)), Strategy::Filtered);
    // Half of the collection (a share of 0.5) still reads cheaper through the index.
    assert_eq!(Strategy::Auto.resolve(&indexed, 21_000, 256, Some(0.51)), Strategy::Filtered);
    // A strict-mode collection refusing unindexed filters is only ever scrolled.
    let strict = CollectionInfo { strict: Some(StrictMode { unindexed_filtering_retrieve: Some(false), ..StrictMode::default() }), ..plain.clone() };
    assert!(strict.refuses_doc_hash_filters() && !plain.refuses_doc_hash_filters());
    assert_eq!(Strategy::Filtered.resolve(&strict, 10, 256, None), Strategy::ScrollAll);
    assert_eq!(Strategy::Auto.resolve(&strict, 10, 256, None), Strategy::ScrollAll);
    let strict_indexed = CollectionInfo { strict: strict.strict.clone(), ..indexed.clone() };
    assert_eq!(Strategy::Auto.resolve(&strict_indexed, 10, 256, None), Strategy::Filtered);
}

#[test]
fn slices_cover_every_id_once() {
    for n in [1u32, 2, 3, 4, 7] {
        let slices = Slice::split(n);
        assert_eq!(slices.len(), n as usize);
        assert_eq!(slices[0].start, Value::Null);
        assert_eq!(slices[n as usize - 1].stop, None);
        for w in slices.windows(2) {
            assert_eq!(w[0].stop.map(|s| json!(s)), Some(w[1].start.clone()), "{n}");
        }
    }
    let ids = [0u64, 1, (1 << 59) - 1, 1 << 59, (1 << 60) - 1, 1 << 60, u64::MAX];
    let slices = Slice::split(2);
    for id in ids {
        let owners = slices.iter().filter(|s| s.stop.is_none_or(|stop| id < stop) && s.start.as_u64().is_none_or(|st| id >= st)).count();
        assert_eq!(owners, 1, "{id}");
    }
}

#[test]
fn point_ids_parse_as_integers_or_uuids() {
    let p: Point = serde_json::from_str(r#"{"id": 1152921504606846975, "payload": null}"#).unwrap_or_default();
    assert_eq!(p.id, PointId(Some((1 << 60) - 1)));
    let p: Point = serde_json::from_str(r#"{"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"}"#).unwrap_or_default();
    assert_eq!(p.id, PointId(None));
}

/// The shape of Qdrant 1.19's `/telemetry?details_level=3`, cut to what is read.
fn telemetry(shards: Value) -> Value {
    json!({"collections": {"collections": [
        {"id": "other", "shards": [{"id": 0, "local": {"update_queue": {"length": 0, "op_num": 99}}, "remote": []}]},
        {"id": "recon_knowledge_hybrid", "init_time_ms": 17, "shards": shards}
    ]}})
}

#[test]
fn write_marks_are_each_shards_last_operation_only_when_nothing_is_pending_or_remote() {
    let shard = |id: u64, length: u64, op: u64| json!({"id": id, "local": {"update_queue": {"length": length, "op_num": op}}, "remote": []});
    let c = "recon_knowledge_hybrid";
    assert_eq!(parse_write_marks(&telemetry(json!([shard(0, 0, 1234)])), c), Some(vec![1234]));
    // In shard order, whatever order the server lists them in.
    assert_eq!(parse_write_marks(&telemetry(json!([shard(1, 0, 7), shard(0, 0, 5)])), c), Some(vec![5, 7]));
    // Writes still queued: their effect may not be readable yet.
    assert_eq!(parse_write_marks(&telemetry(json!([shard(0, 3, 1234)])), c), None);
    // A replica elsewhere may take writes this peer has not numbered.
    let replicated = json!([{"id": 0, "local": {"update_queue": {"length": 0, "op_num": 5}}, "remote": [{"peer_id": 2}]}]);
    assert_eq!(parse_write_marks(&telemetry(replicated), c), None);
    // A shard held only by another peer, no shards, or another collection.
    assert_eq!(parse_write_marks(&telemetry(json!([{"id": 0, "local": null, "remote": []}])), c), None);
    assert_eq!(parse_write_marks(&telemetry(json!([])), c), None);
    assert_eq!(parse_write_marks(&telemetry(json!([shard(0, 0, 1)])), "missing"), None);
    // Lower details levels omit the queue.
    assert_eq!(parse_write_marks(&telemetry(json!([{"id": 0, "local": {"status": "green"}, "remote": []}])), c), None);
}
