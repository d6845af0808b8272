//! The push benchmark (ignored by default: it takes ~20 s and wants release mode):
//! `cargo test --release -p integration-tests --test push_bench -- --ignored --nocapture`.

#[test]
#[ignore]
fn push_benchmark() {
    let r = testkit::push_bench::bench_push(false).expect("push benchmark");
    assert_eq!(r.db_videos, 22_000);
    assert!(r.api_max_requests_per_sec as f64 <= r.rate_per_sec, "{r:?}");
}
