//! Both push transports against the PeerTube stand-in (needs PostgreSQL:
//! `RECON_COMPANION_TEST_PG_URL`): `cargo bench -p integration-tests --bench push`
//! prints the table of `testkit::push_bench` and checks nothing was lost;
//! `-- api` prints only our api push against the bare PUT loop (300 and 3000 videos).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failed step must stop it loudly

fn main() {
    if std::env::args().any(|a| a == "api") {
        for n in [300, 3000] {
            let r = testkit::push_bench::api_vs_bare(n).expect("api vs bare");
            println!("{r:?}");
            assert_eq!((r.lost, r.doubled), (0, 0), "{r:?}");
            assert_eq!(r.retries_500, r.retried_500, "every serialization 500 retried: {r:?}");
        }
        return;
    }
    let r = testkit::push_bench::bench_push(false).expect("push benchmark");
    assert_eq!(r.db_videos, 22_000);
    assert_eq!(r.db_rollback_videos, 22_000, "{r:?}");
    assert_eq!((r.api_lost, r.api_duplicated, r.api_puts_to_already_right), (0, 0, 0), "{r:?}");
    assert_eq!(r.api_serialization_500s, r.api_serialization_retried, "every serialization 500 retried: {r:?}");
}
