//! The push benchmark: the db transport on a production-sized set against
//! local PostgreSQL, and the api transport against the stand-in answering in
//! 20 ms, compared with RECON's sequential client (PUT, sleep 0.1 s).

use crate::fixture::{self, ScratchPg};
use crate::peertube::{StandIn, StandInConfig};
use companion::config::{Config, Transport};
use companion::context::Env;
use companion::error::{Error, Result};
use companion::peertube::api::{ApiClient, ApiSettings};
use companion::peertube::push::{self as pusher, PushOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// Settings of one benchmark run.
#[derive(Debug, Clone)]
pub struct PushBench {
    pub db_videos: usize,
    pub api_videos: usize,
    pub baseline_videos: usize,
    pub latency: Duration,
    pub concurrency: usize,
    pub rate_per_sec: f64,
}

impl Default for PushBench {
    fn default() -> Self {
        PushBench { db_videos: 22_000, api_videos: 600, baseline_videos: 40, latency: Duration::from_millis(20), concurrency: 4, rate_per_sec: 100.0 }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PushBenchResult {
    pub db_videos: u64,
    pub db_secs: f64,
    pub db_phase_ms: std::collections::BTreeMap<String, u64>,
    pub api_videos: u64,
    pub api_secs: f64,
    pub api_videos_per_sec: f64,
    pub api_requests: u64,
    pub api_max_requests_per_sec: usize,
    pub rate_per_sec: f64,
    pub concurrency: usize,
    pub baseline_videos_per_sec: f64,
    pub speedup: f64,
}

const PASSWORD_ENV: &str = "RECON_COMPANION_BENCH_PEERTUBE_PASSWORD";

fn config_for(dir: &Path, standin: &StandIn, b: &PushBench) -> (Config, Env) {
    let mut cfg = Config { recon_db: dir.join("recon.db"), reports_dir: dir.join("reports"), concepts_dir: dir.join("concepts"), ..Default::default() };
    cfg.peertube.url = standin.url.clone();
    cfg.peertube.host_header = Some("stream.echo6.co".into());
    cfg.peertube.password_env = PASSWORD_ENV.into();
    cfg.peertube.token_cache = Some(dir.join("token.json"));
    cfg.peertube.concurrency = b.concurrency;
    cfg.peertube.rate_per_sec = b.rate_per_sec;
    cfg.peertube.timeout_secs = 10;
    let mut env = Env::from_config(&cfg);
    env.progress = false;
    (cfg, env)
}

/// Runs both measurements; needs a local PostgreSQL (see `fixture::test_pg_admin_url`).
pub fn run(b: &PushBench) -> Result<PushBenchResult> {
    std::env::set_var(PASSWORD_ENV, StandInConfig::default().password);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| Error::Other(e.to_string()))?;
    rt.block_on(run_async(b))
}

async fn run_async(b: &PushBench) -> Result<PushBenchResult> {
    let mut r = PushBenchResult { rate_per_sec: b.rate_per_sec, concurrency: b.concurrency, ..Default::default() };
    let io = |e: std::io::Error| Error::Other(format!("bench: {e}"));

    // db transport: production-sized.
    {
        let dir = fixture::TempDir::new("recon-push-bench")?;
        let standin = StandIn::start(StandInConfig::default()).map_err(io)?;
        let (mut cfg, env) = config_for(dir.path(), &standin, b);
        let docs = fixture::recon_db(&cfg.recon_db, b.db_videos, 7)?;
        let pg = ScratchPg::create().await?;
        let videos: Vec<_> = docs.iter().map(|d| (d.video.clone(), None, false)).collect();
        companion::peertube::db::insert_videos(&pg.connect().await?, &videos).await?;
        cfg.peertube.db_url = Some(pg.url.clone());
        let opts = PushOptions { limit: None, dry_run: false, transport: Transport::Db, batch_size: cfg.peertube.batch_size, command: "push-pending".into() };
        let t = Instant::now();
        let s = pusher::push(&cfg, &env, &opts, None).await?;
        r.db_secs = t.elapsed().as_secs_f64();
        r.db_videos = s.pushed;
        r.db_phase_ms = s.phase_ms.clone();
        if s.pushed as usize != b.db_videos {
            return Err(Error::Other(format!("db bench pushed {} of {}", s.pushed, b.db_videos)));
        }
    }

    // api transport against the stand-in answering in 20 ms.
    {
        let dir = fixture::TempDir::new("recon-push-bench")?;
        let standin = StandIn::start(StandInConfig { latency: b.latency, ..Default::default() }).map_err(io)?;
        let (cfg, env) = config_for(dir.path(), &standin, b);
        let docs = fixture::recon_db(&cfg.recon_db, b.api_videos + b.baseline_videos, 8)?;
        for d in &docs {
            standin.add_video(&d.video, None, false);
        }
        // RECON's client: one PUT, then sleep 0.1 s.
        let seq = ApiClient::new(ApiSettings { rate_per_sec: 10_000.0, ..ApiSettings::from_config(&cfg) })?;
        seq.ensure_login().await.map_err(Error::from)?;
        let t = Instant::now();
        for d in docs.iter().rev().take(b.baseline_videos) {
            seq.set_category(&d.video, Some(d.category)).await.map_err(Error::from)?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        r.baseline_videos_per_sec = b.baseline_videos as f64 / t.elapsed().as_secs_f64();
        standin.with(|i| i.request_times.clear());

        let opts = PushOptions { limit: Some(b.api_videos as u64), dry_run: false, transport: Transport::Api, batch_size: 500, command: "push-pending".into() };
        let t = Instant::now();
        let s = pusher::push(&cfg, &env, &opts, None).await?;
        r.api_secs = t.elapsed().as_secs_f64();
        r.api_videos = s.pushed + s.already_set;
        r.api_requests = s.http_requests;
        r.api_videos_per_sec = r.api_videos as f64 / r.api_secs;
        r.api_max_requests_per_sec = standin.max_requests_in(Duration::from_secs(1));
        r.speedup = r.api_videos_per_sec / r.baseline_videos_per_sec;
    }
    Ok(r)
}

/// The benchmark's table.
pub fn table(r: &PushBenchResult) -> String {
    companion::output::table(
        &["push benchmark", "videos", "seconds", "videos/s", "notes"],
        vec![
            vec![
                "db transport (local PostgreSQL)".to_string(),
                r.db_videos.to_string(),
                format!("{:.2}", r.db_secs),
                format!("{:.0}", r.db_videos as f64 / r.db_secs.max(1e-9)),
                format!("target < 5 s; ms by phase {:?}", r.db_phase_ms),
            ],
            vec![
                "api, RECON's sequential client".to_string(),
                "-".into(),
                "-".into(),
                format!("{:.1}", r.baseline_videos_per_sec),
                "PUT + sleep 0.1 s, stand-in at 20 ms".into(),
            ],
            vec![
                format!("api transport (concurrency {}, {}/s)", r.concurrency, r.rate_per_sec),
                r.api_videos.to_string(),
                format!("{:.2}", r.api_secs),
                format!("{:.1}", r.api_videos_per_sec),
                format!(
                    "{:.1}x sequential (target >= 4x); {} requests, max {} in any 1 s (limit {})",
                    r.speedup, r.api_requests, r.api_max_requests_per_sec, r.rate_per_sec
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
