//! The push benchmark: the db transport and its rollback on a production-sized set against local PostgreSQL, and, against one stand-in profile of PeerTube 8.0.1 on 2 cores, its bare-PUT ceiling, RECON's writer and our api transport with default settings.

use crate::fixture::{self, FixtureDoc, ScratchPg};
use crate::peertube::{StandIn, StandInConfig};
use companion::config::{Config, Transport};
use companion::context::Env;
use companion::error::{Error, Result};
use companion::peertube::api::{ApiClient, ApiSettings};
use companion::peertube::push::{self as pusher, PushOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Settings of one benchmark run.
#[derive(Debug, Clone)]
pub struct PushBench {
    pub db_videos: usize,
    pub api_videos: usize,
    /// Of the api videos, every n-th already holds its category (no request may reach PeerTube for it).
    pub already_right_every: usize,
    pub baseline_videos: usize,
    pub ceiling_videos: usize,
    /// Requests in flight of the bare PUT loop that measures the stand-in's ceiling.
    pub ceiling_in_flight: usize,
    pub profile: StandInConfig,
}

impl Default for PushBench {
    fn default() -> Self {
        PushBench {
            db_videos: 22_000,
            api_videos: 900,
            already_right_every: 10,
            baseline_videos: 60,
            ceiling_videos: 300,
            ceiling_in_flight: 8,
            profile: StandInConfig::peertube_8_on_2_cores(),
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PushBenchResult {
    pub db_videos: u64,
    pub db_secs: f64,
    pub db_phase_ms: std::collections::BTreeMap<String, u64>,
    /// Rollback of the db push, through the transport the run used (no `--via`).
    pub db_rollback_videos: u64,
    pub db_rollback_secs: f64,
    pub ceiling_videos_per_sec: f64,
    pub baseline_videos_per_sec: f64,
    pub api_videos: u64,
    pub api_written: u64,
    pub api_already_right: u64,
    pub api_secs: f64,
    pub api_videos_per_sec: f64,
    /// Video requests (list pages, GETs, PUT attempts) per selected video.
    pub api_requests_per_video: f64,
    pub api_http_requests: u64,
    pub api_retries: u64,
    pub api_serialization_500s: u64,
    pub api_serialization_retried: u64,
    pub api_concurrency_reached: usize,
    pub api_max_puts_in_flight: usize,
    /// PUTs that reached a video already holding its category.
    pub api_puts_to_already_right: u64,
    /// Videos written more than once, or not holding their category at the end.
    pub api_duplicated: u64,
    pub api_lost: u64,
    pub speedup: f64,
    pub of_ceiling: f64,
}

const PASSWORD_ENV: &str = "RECON_COMPANION_BENCH_PEERTUBE_PASSWORD";

/// The default config pointed at the stand-in: the numbers under test are the defaults.
fn config_for(dir: &Path, standin: &StandIn) -> (Config, Env) {
    let mut cfg = Config { recon_db: dir.join("recon.db"), reports_dir: dir.join("reports"), concepts_dir: dir.join("concepts"), ..Default::default() };
    cfg.peertube.url = standin.url.clone();
    cfg.peertube.host_header = Some("stream.echo6.co".into());
    cfg.peertube.password_env = PASSWORD_ENV.into();
    cfg.peertube.token_cache = Some(dir.join("token.json"));
    let mut env = Env::from_config(&cfg);
    env.progress = false;
    (cfg, env)
}

/// Runs every measurement; needs a local PostgreSQL (see `fixture::test_pg_admin_url`).
pub fn run(b: &PushBench) -> Result<PushBenchResult> {
    std::env::set_var(PASSWORD_ENV, StandInConfig::default().password);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| Error::Other(e.to_string()))?;
    rt.block_on(run_async(b))
}

fn io(e: std::io::Error) -> Error {
    Error::Other(format!("bench: {e}"))
}

async fn bench_db(b: &PushBench, r: &mut PushBenchResult) -> Result<()> {
    let dir = fixture::TempDir::new("recon-push-bench")?;
    let standin = StandIn::start(StandInConfig::default()).map_err(io)?;
    let (mut cfg, env) = config_for(dir.path(), &standin);
    let docs = fixture::recon_db(&cfg.recon_db, b.db_videos, 7)?;
    let pg = ScratchPg::create().await?;
    let videos: Vec<_> = docs.iter().map(|d| (d.video.clone(), None, false)).collect();
    companion::peertube::db::insert_videos(&pg.connect().await?, &videos).await?;
    cfg.peertube.db_url = Some(pg.url.clone());
    // The API stays the config's default: the rollback must find the run's own transport.
    let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Db, batch_size: cfg.peertube.batch_size, command: "push-pending".into() };
    let t = Instant::now();
    let s = pusher::push(&cfg, &env, &opts, None).await?;
    r.db_secs = t.elapsed().as_secs_f64();
    r.db_videos = s.pushed;
    r.db_phase_ms = s.phase_ms.clone();
    if s.pushed as usize != b.db_videos {
        return Err(Error::Other(format!("db bench pushed {} of {}", s.pushed, b.db_videos)));
    }
    let run_id = s.run_id.clone().unwrap_or_default();
    let (cfg2, env2) = (cfg.clone(), env.clone());
    let t = Instant::now();
    let rb = tokio::task::spawn_blocking(move || -> Result<companion::engine::rollback::RollbackSummary> {
        let conn = companion::recon::db::open_readonly(&env2.recon_db)?;
        let restorer = companion::peertube::restore::restorer_for_run(&cfg2, &conn, &run_id, None)?;
        drop(conn);
        companion::engine::rollback::rollback(&env2, &run_id, false, false, restorer)
    })
    .await
    .map_err(|e| Error::Other(format!("rollback task: {e}")))??;
    r.db_rollback_secs = t.elapsed().as_secs_f64();
    r.db_rollback_videos = rb.videos_restored;
    if standin.with(|i| i.put_attempts) != 0 {
        return Err(Error::Other("the db rollback went through the API".into()));
    }
    Ok(())
}

/// A bare PUT loop at `in_flight`: what the stand-in profile takes at most.
async fn ceiling(client: Arc<ApiClient>, docs: &[FixtureDoc], in_flight: usize) -> Result<f64> {
    let sem = Arc::new(tokio::sync::Semaphore::new(in_flight.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let t = Instant::now();
    for d in docs {
        let permit = sem.clone().acquire_owned().await.map_err(|e| Error::Other(e.to_string()))?;
        let (c, v, cat) = (client.clone(), d.video.clone(), d.category);
        set.spawn(async move {
            let r = c.set_category(&v, Some(cat)).await;
            drop(permit);
            r
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| Error::Other(e.to_string()))?.map_err(Error::from)?;
    }
    Ok(docs.len() as f64 / t.elapsed().as_secs_f64())
}

async fn bench_api(b: &PushBench, r: &mut PushBenchResult) -> Result<()> {
    let dir = fixture::TempDir::new("recon-push-bench")?;
    let standin = StandIn::start(b.profile.clone()).map_err(io)?;
    let (cfg, env) = config_for(dir.path(), &standin);
    let n = b.api_videos + b.baseline_videos + b.ceiling_videos;
    let docs = fixture::recon_db(&cfg.recon_db, n, 8)?;
    // Oldest assignments are pushed first: the api run takes the first api_videos.
    let (api_docs, rest) = docs.split_at(b.api_videos);
    let (baseline_docs, ceiling_docs) = rest.split_at(b.baseline_videos);
    for (i, d) in docs.iter().enumerate() {
        let right = i < b.api_videos && b.already_right_every > 0 && i % b.already_right_every == 0;
        standin.add_video(&d.video, right.then_some(d.category), false);
    }

    // PeerTube's ceiling: a bare PUT loop, fixed in flight, no rate cap.
    let bare = ApiSettings { rate_per_sec: 10_000.0, concurrency: b.ceiling_in_flight, adaptive: false, max_retries: 10, ..ApiSettings::from_config(&cfg) };
    let bare = Arc::new(ApiClient::new(bare)?);
    bare.ensure_login().await.map_err(Error::from)?;
    r.ceiling_videos_per_sec = ceiling(bare, ceiling_docs, b.ceiling_in_flight).await?;

    // RECON's writer: one PUT, then sleep 0.1 s.
    let seq = ApiClient::new(ApiSettings { rate_per_sec: 10_000.0, concurrency: 1, adaptive: false, ..ApiSettings::from_config(&cfg) })?;
    seq.ensure_login().await.map_err(Error::from)?;
    let t = Instant::now();
    for d in baseline_docs {
        seq.set_category(&d.video, Some(d.category)).await.map_err(Error::from)?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    r.baseline_videos_per_sec = b.baseline_videos as f64 / t.elapsed().as_secs_f64();

    let before = standin.with(|i| (i.put_attempts, i.video_gets, i.list_requests, i.serialization_failures, i.puts.clone()));
    standin.with(|i| i.max_puts_in_flight = 0);
    let opts = PushOptions { limit: Some(b.api_videos as u64), dry_run: false, transport: Transport::Api, batch_size: 500, command: "push-pending".into() };
    let t = Instant::now();
    let s = pusher::push(&cfg, &env, &opts, None).await?;
    r.api_secs = t.elapsed().as_secs_f64();
    let after = standin.with(|i| (i.put_attempts, i.video_gets, i.list_requests, i.serialization_failures, i.puts.clone()));
    r.api_videos = s.pushed + s.already_set;
    r.api_written = s.pushed;
    r.api_already_right = s.already_set;
    r.api_videos_per_sec = r.api_videos as f64 / r.api_secs;
    r.api_http_requests = s.http_requests;
    let video_requests = (after.0 - before.0) + (after.1 - before.1) + (after.2 - before.2);
    r.api_requests_per_video = video_requests as f64 / b.api_videos.max(1) as f64;
    r.api_retries = s.http_retries;
    r.api_serialization_500s = after.3 - before.3;
    r.api_serialization_retried = s.serialization_retries;
    r.api_concurrency_reached = s.concurrency_reached;
    r.api_max_puts_in_flight = standin.with(|i| i.max_puts_in_flight);
    for (i, d) in api_docs.iter().enumerate() {
        let writes = after.4.get(d.video.as_str()).copied().unwrap_or(0) - before.4.get(d.video.as_str()).copied().unwrap_or(0);
        let right = b.already_right_every > 0 && i % b.already_right_every == 0;
        if right {
            r.api_puts_to_already_right += u64::from(writes);
        } else if writes > 1 {
            r.api_duplicated += 1;
        }
        if standin.category(&d.video) != Some(Some(d.category)) {
            r.api_lost += 1;
        }
    }
    r.speedup = r.api_videos_per_sec / r.baseline_videos_per_sec;
    r.of_ceiling = r.api_videos_per_sec / r.ceiling_videos_per_sec;
    Ok(())
}

async fn run_async(b: &PushBench) -> Result<PushBenchResult> {
    let mut r = PushBenchResult::default();
    bench_db(b, &mut r).await?;
    bench_api(b, &mut r).await?;
    Ok(r)
}

/// The benchmark's table.
pub fn table(r: &PushBenchResult) -> String {
    let rate = |v: u64, s: f64| format!("{:.0}", v as f64 / s.max(1e-9));
    companion::output::table(
        &["push benchmark", "videos", "seconds", "videos/s", "notes"],
        vec![
            vec![
                "db transport (local PostgreSQL)".to_string(),
                r.db_videos.to_string(),
                format!("{:.2}", r.db_secs),
                rate(r.db_videos, r.db_secs),
                format!("target < 5 s; ms by phase {:?}", r.db_phase_ms),
            ],
            vec![
                "rollback of that run (its transport: db)".to_string(),
                r.db_rollback_videos.to_string(),
                format!("{:.2}", r.db_rollback_secs),
                rate(r.db_rollback_videos, r.db_rollback_secs),
                "target < 10 s; no request reached the API".into(),
            ],
            vec![
                "stand-in ceiling: bare PUT loop, 8 in flight".to_string(),
                "-".into(),
                "-".into(),
                format!("{:.1}", r.ceiling_videos_per_sec),
                "profile: PeerTube 8.0.1 on 2 cores (45 PUT/s with federation after-work, serialization 500s from 4 in flight)".into(),
            ],
            vec![
                "RECON's writer (PUT, sleep 0.1 s)".to_string(),
                "-".into(),
                "-".into(),
                format!("{:.1}", r.baseline_videos_per_sec),
                "1 request per video".into(),
            ],
            vec![
                "ours, api transport, default config".to_string(),
                r.api_videos.to_string(),
                format!("{:.2}", r.api_secs),
                format!("{:.1}", r.api_videos_per_sec),
                format!(
                    "{:.1}x RECON (target >= 4.5x), {:.0}% of ceiling (target >= 90%); {:.2} requests/video; {} written, {} already right ({} PUTs to them); \
                     {} retries, {} serialization 500s ({} retried); concurrency reached {} (max {} PUTs in flight); lost {}, duplicated {}",
                    r.speedup,
                    r.of_ceiling * 100.0,
                    r.api_requests_per_video,
                    r.api_written,
                    r.api_already_right,
                    r.api_puts_to_already_right,
                    r.api_retries,
                    r.api_serialization_500s,
                    r.api_serialization_retried,
                    r.api_concurrency_reached,
                    r.api_max_puts_in_flight,
                    r.api_lost,
                    r.api_duplicated
                ),
            ],
        ],
    )
}

/// What the `bench` command calls: runs and prints the push section.
pub fn bench_push(json: bool) -> Result<PushBenchResult> {
    let r = run(&PushBench::default())?;
    if json {
        companion::output::print_json(&r)?;
    } else {
        println!("{}", table(&r));
    }
    Ok(r)
}

/// Our api transport against a bare PUT loop on the same stand-in profile
/// (issue #16 item 4): what the lead's combined benchmark prints.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PushRow {
    pub videos: usize,
    /// A bare PUT loop (`ceiling_in_flight` in flight, no rate cap, no journal).
    pub bare_put_per_sec: f64,
    /// `push-pending --transport api` with the default config, whole run (login, preflight, snapshot included).
    pub ours_per_sec: f64,
    pub ratio: f64,
    /// Serialization 500s our run met (each must be retried).
    pub retries_500: u64,
    pub retried_500: u64,
    /// Videos of our run written twice or not holding their category at the end.
    pub lost: u64,
    pub doubled: u64,
    /// Milliseconds of our run before its first PUT (login, preflight, journal, snapshot).
    pub before_first_put_ms: u64,
    pub concurrency_reached: usize,
    pub target: f64,
    pub met: bool,
}

/// The bare loop and our default push, each on its own `videos` videos of one stand-in (PeerTube 8.0.1 on 2 cores), every category to write as after a reset.
pub fn api_vs_bare(videos: usize) -> Result<PushRow> {
    std::env::set_var(PASSWORD_ENV, StandInConfig::default().password);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| Error::Other(e.to_string()))?;
    rt.block_on(api_vs_bare_async(videos, &PushBench::default()))
}

async fn api_vs_bare_async(videos: usize, b: &PushBench) -> Result<PushRow> {
    let dir = fixture::TempDir::new("recon-push-bench")?;
    let standin = StandIn::start(b.profile.clone()).map_err(io)?;
    let (cfg, env) = config_for(dir.path(), &standin);
    let docs = fixture::recon_db(&cfg.recon_db, 2 * videos, 9)?;
    // Oldest assignments are pushed first: our run takes the first half.
    let (ours, bare_docs) = docs.split_at(videos);
    for d in &docs {
        standin.add_video(&d.video, None, false);
    }
    let bare = ApiSettings { rate_per_sec: 10_000.0, concurrency: b.ceiling_in_flight, adaptive: false, max_retries: 10, ..ApiSettings::from_config(&cfg) };
    let bare = Arc::new(ApiClient::new(bare)?);
    bare.ensure_login().await.map_err(Error::from)?;
    let bare_put_per_sec = ceiling(bare, bare_docs, b.ceiling_in_flight).await?;

    let (before_500, before_puts) = standin.with(|i| (i.serialization_failures, i.puts.clone()));
    let opts = PushOptions {
        limit: Some(videos as u64),
        dry_run: false,
        transport: Transport::Api,
        batch_size: cfg.peertube.batch_size,
        command: "push-pending".into(),
    };
    let t = Instant::now();
    let s = pusher::push(&cfg, &env, &opts, None).await?;
    let secs = t.elapsed().as_secs_f64();
    let (after_500, after_puts, first_put) = standin.with(|i| (i.serialization_failures, i.puts.clone(), i.first_put_after(t)));
    let (mut lost, mut doubled) = (0, 0);
    for d in ours {
        let n = after_puts.get(d.video.as_str()).copied().unwrap_or(0) - before_puts.get(d.video.as_str()).copied().unwrap_or(0);
        doubled += u64::from(n > 1);
        lost += u64::from(standin.category(&d.video) != Some(Some(d.category)));
    }
    let ours_per_sec = (s.pushed + s.already_set) as f64 / secs;
    let ratio = ours_per_sec / bare_put_per_sec;
    let target = 0.9;
    Ok(PushRow {
        videos,
        bare_put_per_sec,
        ours_per_sec,
        ratio,
        retries_500: after_500 - before_500,
        retried_500: s.serialization_retries,
        lost,
        doubled,
        before_first_put_ms: first_put.map_or(0, |d| d.as_millis() as u64),
        concurrency_reached: s.concurrency_reached,
        target,
        met: ratio >= target && lost == 0 && doubled == 0 && s.serialization_retries == after_500 - before_500,
    })
}
