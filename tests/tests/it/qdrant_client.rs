//! The Qdrant client against the in-process stand-in: RECON's counting rule, batching and pagination, request budgets, and every failure mode.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

use std::collections::HashMap;
use std::time::{Duration, Instant};

use companion::assign::Counts;
use companion::config::qdrant::QdrantSettings;
use companion::recon::qdrant::{DocCounts, QdrantClient};
use companion::support::retry::RetryPolicy;
use companion::Error;
use serde_json::{json, Value};
use shared_constants::{index_of_label, DOMAINS};
use testkit::qdrant::{QdrantStandIn, StandInConfig};

fn h(i: u64) -> String {
    format!("{i:032x}")
}

fn idx(label: &str) -> usize {
    index_of_label(label).unwrap_or(usize::MAX)
}

fn client(url: &str, tweak: impl FnOnce(&mut QdrantSettings)) -> QdrantClient {
    let mut s = QdrantSettings { url: url.to_string(), ..QdrantSettings::default() };
    tweak(&mut s);
    let fast = RetryPolicy { min_delay: Duration::from_millis(5), max_delay: Duration::from_millis(20), ..RetryPolicy::default() };
    QdrantClient::new(s).expect("valid settings").with_retry_policy(fast)
}

fn doc(counts: &[(&str, u64)], points: u64) -> DocCounts {
    let mut c = Counts::default();
    for &(label, n) in counts {
        c[idx(label)] = n;
    }
    DocCounts { counts: c, points }
}

/// Hand-made collection: ids interleave documents so pages cut across them.
async fn small_fixture() -> (QdrantStandIn, Vec<String>, HashMap<String, DocCounts>) {
    let s = QdrantStandIn::start(StandInConfig::default()).await;
    let (a, b, c, pdf) = (h(1), h(2), h(3), h(100));
    let a_points = [
        json!("Medical"),
        json!("Medical"),
        json!("Security"),
        // Each valid element counts, duplicates too.
        json!(["Logistics", "bogus", "Logistics"]),
        json!("Science & Technology"), // legacy label
        json!("medical"),              // labels are case-sensitive
        Value::Null,
        json!(42),
        json!({"label": "Medical"}),
    ];
    for (i, d) in a_points.iter().enumerate() {
        s.add_point(10 * i as u64 + 1, json!({"doc_hash": a, "domain": d, "source_type": "transcript"}));
    }
    s.add_point(5, json!({"doc_hash": a, "title": "no domain at all"}));
    // B has points but nothing valid: present with zero counts (not `no_concepts`).
    s.add_point(12, json!({"doc_hash": b, "domain": ["Not a label"]}));
    // Another source's points in the same collection, and one without doc_hash.
    s.add_point(13, json!({"doc_hash": pdf, "domain": "Medical", "source_type": "pdf"}));
    s.add_point(14, json!({"domain": "Medical"}));
    let mut want = HashMap::new();
    want.insert(a, doc(&[("Medical", 2), ("Security", 1), ("Logistics", 2)], 10));
    want.insert(b, doc(&[], 1));
    (s, vec![h(1), h(2), c], want)
}

#[tokio::test]
async fn counts_match_a_hand_computed_expectation() {
    let (s, hashes, want) = small_fixture().await;
    let q = client(&s.url(), |_| {});
    let batch = q.counts_for(&hashes).await.expect("counts");
    assert_eq!(batch.counts, want);
    assert!(batch.failed.is_empty());
    assert!(!batch.counts.contains_key(&h(3)), "a document without points is absent");
    assert_eq!((batch.requests, batch.retries), (1, 0));

    let all = q.scroll_all_batch().await.expect("all").counts;
    assert_eq!(all.len(), 3, "a, b and the pdf");
    assert_eq!(all[&h(100)], doc(&[("Medical", 1)], 1));
    assert_eq!(all[&h(1)], want[&h(1)]);
}

#[tokio::test]
async fn collection_info_and_count() {
    let (s, _, _) = small_fixture().await;
    s.set_payload_index("doc_hash", "keyword");
    let q = client(&s.url(), |_| {});
    let info = q.collection_info().await.expect("info");
    assert_eq!(info.status, "green");
    assert_eq!(info.points_count, Some(13));
    assert!(info.is_indexed("doc_hash") && !info.is_indexed("domain"));
    assert_eq!(q.count(None).await.expect("count"), 13);
    let f = json!({"must": [{"key": "doc_hash", "match": {"value": h(1)}}]});
    assert_eq!(q.count(Some(f)).await.expect("count"), 10);
}

/// `docs` documents with 0..=4 points each, interleaved with other sources.
fn generated(s: &QdrantStandIn, docs: u64) -> (Vec<String>, HashMap<String, DocCounts>) {
    let mut want: HashMap<String, DocCounts> = HashMap::new();
    let mut id = 0u64;
    for i in 0..docs {
        for k in 0..(i % 5) {
            id += 1 + (i * 7 + k) % 3;
            let label = DOMAINS[((i + k * k) % 18) as usize].label;
            let domain = if k == 2 { json!([label, "legacy", label]) } else { json!(label) };
            s.add_point(id, json!({"doc_hash": h(i), "domain": domain}));
            let e = want.entry(h(i)).or_default();
            e.points += 1;
            e.counts[idx(label)] += if k == 2 { 2 } else { 1 };
        }
        id += 1;
        s.add_point(id, json!({"doc_hash": h(1_000_000 + i), "domain": "Medical"}));
    }
    ((0..docs).map(h).collect(), want)
}

/// Scroll requests Qdrant needs: one page per `page` points, at least one per chunk.
fn predicted_requests(hashes: &[String], want: &HashMap<String, DocCounts>, per_request: usize, page: u64) -> u64 {
    hashes
        .chunks(per_request)
        .map(|c| {
            let n: u64 = c.iter().filter_map(|h| want.get(h)).map(|d| d.points).sum();
            n.div_ceil(page).max(1)
        })
        .sum()
}

#[tokio::test]
async fn results_do_not_depend_on_page_or_chunk_size() {
    let s = QdrantStandIn::start(StandInConfig::default()).await;
    let (hashes, want) = generated(&s, 60);
    for page_size in [1u32, 3, 1000] {
        for per_request in [1usize, 7, 500] {
            s.reset_stats();
            let q = client(&s.url(), |c| {
                c.page_size = page_size;
                c.hashes_per_request = per_request;
            });
            let batch = q.counts_for(&hashes).await.expect("counts");
            assert_eq!(batch.counts, want, "page {page_size}, chunk {per_request}");
            let expected = predicted_requests(&hashes, &want, per_request, u64::from(page_size));
            assert_eq!(batch.requests, expected, "page {page_size}, chunk {per_request}");
            assert_eq!(s.stats().scroll_requests, expected);
        }
    }
    let q = client(&s.url(), |c| c.page_size = 7);
    let all = q.scroll_all_batch().await.expect("all").counts;
    let mine: HashMap<String, DocCounts> = all.into_iter().filter(|(k, _)| want.contains_key(k)).collect();
    assert_eq!(mine, want);
}

#[tokio::test]
async fn two_thousand_documents_take_a_handful_of_requests() {
    let s = QdrantStandIn::start(StandInConfig::default()).await;
    let mut want = HashMap::new();
    for i in 0..2000u64 {
        for k in 0..2 {
            s.add_point(i * 3 + k, json!({"doc_hash": h(i), "domain": "Vehicles"}));
        }
        s.add_point(i * 3 + 2, json!({"doc_hash": h(5000 + i), "domain": "Vehicles"}));
        want.insert(h(i), doc(&[("Vehicles", 2)], 2));
    }
    let hashes: Vec<String> = (0..2000).map(h).collect();
    let q = client(&s.url(), |c| c.hashes_per_request = 256); // pages of 1000
    let batch = q.counts_for(&hashes).await.expect("counts");
    assert_eq!(batch.counts, want);
    // ceil(2000 / 256) = 8 chunks of at most 512 points: one page each.
    assert_eq!(batch.requests, 8);
    let st = s.stats();
    assert_eq!((st.requests, st.scroll_requests, st.points_returned), (8, 8, 4000));
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried() {
    let (s, hashes, want) = small_fixture().await;
    s.rate_limit_next(Some(1), 1);
    s.fail_next(500, 1);
    s.fail_next(503, 1);
    let q = client(&s.url(), |_| {});
    let started = Instant::now();
    let batch = q.counts_for(&hashes).await.expect("counts");
    assert_eq!(batch.counts, want);
    assert!(batch.failed.is_empty());
    assert_eq!((batch.requests, batch.retries), (4, 3));
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
}

#[tokio::test]
async fn a_chunk_failing_for_good_reports_only_its_hashes() {
    let s = QdrantStandIn::start(StandInConfig::default()).await;
    let (hashes, want) = generated(&s, 20);
    // Chunks of 3: hash 7 shares its chunk with 6 and 8.
    s.fail_matching(&h(7), 500);
    let q = client(&s.url(), |c| {
        c.hashes_per_request = 3;
        c.retries = 2;
    });
    let batch = q.counts_for(&hashes).await.expect("other chunks still count");
    let mut failed: Vec<&str> = batch.failed.iter().map(|(h, _)| h.as_str()).collect();
    failed.sort_unstable();
    assert_eq!(failed, [h(6), h(7), h(8)]);
    assert!(batch.failed.iter().all(|(_, e)| e.contains("HTTP 500")), "{:?}", batch.failed);
    let expected: HashMap<String, DocCounts> = want.into_iter().filter(|(k, _)| ![h(6), h(7), h(8)].contains(k)).collect();
    assert_eq!(batch.counts, expected);
    assert_eq!(batch.retries, 2);
}

#[tokio::test]
async fn a_connection_dropped_mid_scroll_is_retried() {
    let s = QdrantStandIn::start(StandInConfig::default()).await;
    let (hashes, want) = generated(&s, 10);
    s.drop_scroll(2);
    let q = client(&s.url(), |c| c.page_size = 2);
    let batch = q.counts_for(&hashes).await.expect("counts");
    assert_eq!(batch.counts, want);
    assert_eq!(batch.retries, 1);
    assert_eq!(batch.requests, predicted_requests(&hashes, &want, 256, 2) + 1);
}

#[tokio::test]
async fn a_page_slower_than_the_timeout_is_retried() {
    let (s, hashes, want) = small_fixture().await;
    s.delay_next(Duration::from_millis(800), 1);
    let q = client(&s.url(), |c| c.timeout = Duration::from_millis(300));
    let batch = q.counts_for(&hashes).await.expect("counts");
    assert_eq!((batch.counts, batch.retries), (want, 1));
}

#[tokio::test]
async fn an_unknown_collection_is_an_error_naming_it() {
    let (s, hashes, _) = small_fixture().await;
    let q = client(&s.url(), |c| c.collection = "videos_v2".into());
    let e = q.counts_for(&hashes).await.expect_err("missing collection");
    assert!(matches!(e, Error::QdrantCollectionMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("\"videos_v2\" not found at http://127.0.0.1:"), "{e}");
    let e = q.collection_info().await.expect_err("missing collection");
    assert!(e.to_string().contains("videos_v2"), "{e}");
    assert_eq!(s.stats().requests, 2, "404 is not retried");
}

#[tokio::test]
async fn a_missing_or_wrong_api_key_is_an_error_without_retries() {
    let (s, hashes, want) = small_fixture().await;
    s.set_api_key(Some("sesame"));
    for key in [None, Some("wrong")] {
        s.reset_stats();
        let q = client(&s.url(), |c| c.api_key = key.map(str::to_string));
        let e = q.counts_for(&hashes).await.expect_err("refused");
        assert!(matches!(e, Error::Qdrant { .. }) && e.to_string().contains("HTTP 401"), "{e}");
        assert_eq!(s.stats().requests, 1);
    }
    let q = client(&s.url(), |c| c.api_key = Some("sesame".into()));
    assert_eq!(q.counts_for(&hashes).await.expect("accepted").counts, want);
}

#[tokio::test]
async fn a_server_that_is_not_running_fails_fast() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let q = client(&format!("http://127.0.0.1:{port}"), |_| {});
    let started = Instant::now();
    let e = q.counts_for(&[h(1)]).await.expect_err("nothing listens");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(e.to_string().contains("cannot connect"), "{e}");
    assert!(q.collection_info().await.is_err());
}

#[tokio::test]
async fn no_hashes_means_no_requests() {
    let (s, _, _) = small_fixture().await;
    let q = client(&s.url(), |_| {});
    // Also proves the call's future is Send (the engine runs it on a spawned task).
    let batch = tokio::spawn(async move { q.counts_for(&[]).await }).await.expect("join").expect("empty");
    assert_eq!((batch.counts.len(), batch.requests), (0, 0));
    assert_eq!(s.stats().requests, 0);
}

#[tokio::test]
async fn a_doc_hash_index_changes_the_cost_never_the_answer() {
    let s = QdrantStandIn::start(StandInConfig::default()).await;
    let (hashes, mut want) = generated(&s, 60);
    let q = client(&s.url(), |c| {
        c.page_size = 3;
        c.hashes_per_request = 7;
    });
    let scanned = q.counts_for(&hashes).await.expect("scan");
    let filter = || Some(json!({"must": [{"key": "doc_hash", "match": {"any": [h(3), h(4), h(9)]}}]}));
    let counted = q.count(filter()).await.expect("count");
    s.set_payload_index("doc_hash", "keyword");
    assert_eq!(q.count(filter()).await.expect("indexed count"), counted);
    // Points written after the index exists are indexed too.
    s.add_point(u64::MAX - 3, json!({"doc_hash": [h(4), "other"], "domain": "Medical"}));
    want.get_mut(&h(4)).expect("doc 4").points += 1;
    want.get_mut(&h(4)).expect("doc 4").counts[idx("Medical")] += 1;
    let indexed = q.counts_for(&hashes).await.expect("indexed");
    assert_eq!(indexed.counts, want);
    assert_eq!(scanned.counts.len(), indexed.counts.len());
    assert_eq!(indexed.requests, predicted_requests(&hashes, &want, 7, 3));
}

#[tokio::test]
async fn a_strict_mode_cap_on_limit_shrinks_the_page_and_loses_nothing() {
    let s = QdrantStandIn::start(StandInConfig { max_query_limit: Some(4), ..StandInConfig::default() }).await;
    let (hashes, want) = generated(&s, 30);
    // One request at a time: the first refusal teaches the cap to all that follow.
    let q = client(&s.url(), |c| {
        c.page_size = 1000;
        c.hashes_per_request = 7;
        c.parallel_requests = 1;
    });
    let batch = q.counts_for(&hashes).await.expect("counts under a cap");
    assert_eq!(batch.counts, want);
    // One refused request for the whole call (the cap is remembered), then pages of 4.
    assert_eq!(batch.requests, 1 + predicted_requests(&hashes, &want, 7, 4));
    s.reset_stats();
    // One slice: every page but the last is full.
    let q = client(&s.url(), |c| {
        c.page_size = 1000;
        c.parallel_requests = 1;
    });
    // The cap is listed in the collection's config: read there, never refused.
    assert_eq!(q.collection_info().await.expect("info").strict.and_then(|m| m.max_query_limit), Some(4));
    let mine: HashMap<String, DocCounts> = q.scroll_all_batch().await.expect("all").counts.into_iter().filter(|(k, _)| want.contains_key(k)).collect();
    assert_eq!(mine, want);
    assert_eq!(s.stats().points_returned.div_ceil(4), s.stats().scroll_requests, "no refusal");
}

#[tokio::test]
async fn the_share_of_the_collection_is_estimated_with_one_count() {
    let s = QdrantStandIn::start(StandInConfig::default()).await;
    let (hashes, want) = generated(&s, 60);
    let q = client(&s.url(), |_| {});
    let total = q.collection_info().await.expect("info").points_count.expect("points");
    let mine: u64 = want.values().map(|d| d.points).sum();
    s.reset_stats();
    // 60 documents fit the sample: the estimate is exact.
    let share = q.estimate_share(&hashes, total).await.expect("estimate");
    assert!((share - mine as f64 / total as f64).abs() < 1e-9, "{share}");
    assert_eq!((s.stats().requests, s.stats().count_requests), (1, 1));
    // Other documents only: a small share.
    let others: Vec<String> = (0..60).map(|i| h(1_000_000 + i)).collect();
    let share = q.estimate_share(&others, total).await.expect("estimate");
    assert!((share - 60.0 / total as f64).abs() < 1e-9, "{share}");
}

/// Ids spread over RECON's 60-bit id space, as its md5-derived ids are.
fn spread(s: &QdrantStandIn, docs: u64) -> (Vec<String>, HashMap<String, DocCounts>) {
    let mut want: HashMap<String, DocCounts> = HashMap::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..docs {
        for k in 0..(1 + i % 4) {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let label = DOMAINS[((i + k) % 18) as usize].label;
            s.add_point(x >> 4, json!({"doc_hash": h(i), "domain": label}));
            let e = want.entry(h(i)).or_default();
            e.points += 1;
            e.counts[idx(label)] += 1;
        }
    }
    // The slices' edges themselves, and ids above RECON's range.
    for (n, id) in [1u64 << 58, 1 << 59, 3 << 58, (1 << 60) - 1, 1 << 60, u64::MAX].into_iter().enumerate() {
        s.add_point(id, json!({"doc_hash": h(5_000 + n as u64), "domain": "Medical"}));
        want.insert(h(5_000 + n as u64), doc(&[("Medical", 1)], 1));
    }
    ((0..docs).map(h).collect(), want)
}

#[tokio::test]
async fn parallel_slices_read_every_point_exactly_once() {
    let s = QdrantStandIn::start(StandInConfig::default()).await;
    let (_, want) = spread(&s, 300);
    for (parallel, page) in [(1u32, 1000u32), (2, 7), (4, 13), (3, 1)] {
        let q = client(&s.url(), |c| {
            c.parallel_requests = parallel;
            c.page_size = page;
        });
        s.reset_stats();
        let all = q.scroll_all_batch().await.expect("all");
        assert_eq!(all.counts, want, "{parallel} slices, page {page}");
        // Each slice overshoots by at most one page into the next one.
        let points: u64 = want.values().map(|d| d.points).sum();
        assert!(s.stats().points_returned <= points + u64::from(parallel) * u64::from(page), "{:?}", s.stats());
        assert_eq!(all.requests, s.stats().scroll_requests);
        assert!(all.server_seconds > 0.0, "the answers' `time` fields are summed");
    }
}

#[tokio::test]
async fn strict_mode_caps_are_read_from_the_collection_and_learnt_from_refusals() {
    use testkit::qdrant::StrictMode;
    let s = QdrantStandIn::start(StandInConfig::default()).await;
    let (hashes, want) = generated(&s, 40);
    s.set_strict_mode(StrictMode { condition_max_size: Some(5), max_query_limit: Some(6), ..StrictMode::default() });
    // Learnt from the refusals (no collection info read first).
    let q = client(&s.url(), |c| c.hashes_per_request = 12);
    let batch = q.counts_for(&hashes).await.expect("under caps");
    assert_eq!(batch.counts, want);
    assert!(batch.failed.is_empty());
    // Read from the collection's config: no refusal at all.
    let q = client(&s.url(), |c| c.hashes_per_request = 12);
    let info = q.collection_info().await.expect("info");
    assert_eq!(info.strict.as_ref().and_then(|m| m.condition_max_size), Some(5));
    s.reset_stats();
    let batch = q.counts_for(&hashes).await.expect("under caps");
    assert_eq!(batch.counts, want);
    assert_eq!(batch.requests, predicted_requests(&hashes, &want, 5, 6));
    // Filters on an unindexed doc_hash refused: one scroll of everything instead, same counts.
    s.set_strict_mode(StrictMode { unindexed_filtering_retrieve: Some(false), ..StrictMode::default() });
    let q = client(&s.url(), |_| {});
    let info = q.collection_info().await.expect("info");
    assert!(info.refuses_doc_hash_filters());
    let batch = q.counts_for(&hashes).await.expect("refused filters");
    assert_eq!(batch.counts, want);
    s.set_payload_index("doc_hash", "keyword");
    let info = q.collection_info().await.expect("info");
    assert!(!info.refuses_doc_hash_filters());
}
