//! A test world around the Qdrant stand-in: demo RECON data (recon.db + concept files) and the same concepts as Qdrant points, with configs pointing at both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use companion::config::Config;
use companion::config::SourceKind;
use companion::context::Env;
use companion::demo::{self, DemoSpec};
use rusqlite::Connection;

use crate::qdrant::{QdrantStandIn, StandInConfig};

/// `catalogue.source` of the demo's videos.
pub const SOURCE: &str = "stream.echo6.co";

/// Demo data from `spec` in a new temp dir (`{dir}/data`: recon.db, concepts,
/// `qdrant-points.jsonl`): what every Qdrant world, stand-in or real, starts from.
pub async fn demo_with_points(spec: DemoSpec) -> (tempfile::TempDir, PathBuf, demo::qdrant::PointsSummary) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let d = data.clone();
    let points = tokio::task::spawn_blocking(move || {
        demo::generate(&d, &spec).expect("demo");
        demo::qdrant::write_points(&d, SOURCE).expect("points")
    })
    .await
    .expect("join");
    (dir, data, points)
}

pub struct QdrantWorld {
    pub dir: tempfile::TempDir,
    pub qdrant: QdrantStandIn,
    /// What the demo wrote as points (all loaded into the stand-in).
    pub points: demo::qdrant::PointsSummary,
}

impl QdrantWorld {
    /// `docs` demo videos (seed `seed`) and their points in a new stand-in.
    pub async fn new(docs: usize, seed: u64, standin: StandInConfig) -> QdrantWorld {
        QdrantWorld::with_spec(DemoSpec { seed, ..DemoSpec::demo(docs) }, standin).await
    }

    /// Demo data generated from `spec`, and its points in a new stand-in.
    pub async fn with_spec(spec: DemoSpec, standin: StandInConfig) -> QdrantWorld {
        let (dir, data, points) = demo_with_points(spec).await;
        let qdrant = QdrantStandIn::start(standin).await;
        qdrant.load_jsonl(data.join(demo::qdrant::POINTS_FILE)).expect("load points");
        QdrantWorld { dir, qdrant, points }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A copy of the pristine recon.db, for one engine run.
    pub fn copy_db(&self, name: &str) -> PathBuf {
        copy_db(self.dir.path(), name)
    }

    /// A config on `db` with the given source, pointing at the stand-in.
    pub fn config(&self, db: &Path, kind: SourceKind) -> Config {
        world_config(self.dir.path(), db, kind, &self.qdrant.url(), self.qdrant.collection())
    }

    /// The environment of [`config`](Self::config) after `tweak`, without progress bars.
    pub fn env(&self, db: &Path, kind: SourceKind, tweak: impl FnOnce(&mut Config)) -> Env {
        let mut cfg = self.config(db, kind);
        tweak(&mut cfg);
        let mut env = Env::from_config(&cfg);
        env.progress = false;
        env
    }
}

/// A copy of `{dir}/data/recon.db` at `{dir}/{name}`, migrated as RECON does
/// at start-up (so rows can be read before a run).
pub fn copy_db(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(dir.join("data/recon.db"), &p).expect("copy db");
    companion::recon::db::migrate(&mut Connection::open(&p).expect("open")).expect("migrate");
    p
}

/// A world's config: its data under `dir`, the Qdrant at `url`, fast retries.
pub fn world_config(dir: &Path, db: &Path, kind: SourceKind, url: &str, collection: &str) -> Config {
    let mut cfg = Config {
        recon_db: db.to_path_buf(),
        concepts_dir: dir.join("data/concepts"),
        reports_dir: dir.join("reports"),
        concept_source: kind,
        ..Config::default()
    };
    cfg.qdrant.url = url.to_string();
    cfg.qdrant.collection = collection.to_string();
    cfg.qdrant.retry_base_ms = 5;
    cfg.qdrant.timeout = Duration::from_secs(2);
    // Each run reads Qdrant (fault tests and benches need the requests); the
    // tests of saved counts switch reuse on.
    cfg.qdrant.reuse_counts_secs = 0;
    cfg.qdrant.reuse_unchanged_counts = false;
    cfg
}
