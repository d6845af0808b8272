//! The push benchmark (ignored by default: it takes ~40 s and wants release mode):
//! `cargo test --release -p integration-tests --test push_bench -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

#[test]
#[ignore]
fn push_benchmark() {
    let r = testkit::push_bench::bench_push(false).expect("push benchmark");
    assert_eq!(r.db_videos, 22_000);
    assert_eq!(r.db_rollback_videos, 22_000, "{r:?}");
    assert_eq!((r.api_lost, r.api_duplicated, r.api_puts_to_already_right), (0, 0, 0), "{r:?}");
    assert_eq!(r.api_serialization_500s, r.api_serialization_retried, "every serialization 500 retried: {r:?}");
}
