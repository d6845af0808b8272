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
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let d = data.clone();
        let points = tokio::task::spawn_blocking(move || {
            demo::generate(&d, &spec).expect("demo");
            demo::qdrant::write_points(&d, SOURCE).expect("points")
        })
        .await
        .expect("join");
        let qdrant = QdrantStandIn::start(standin).await;
        qdrant.load_jsonl(data.join(demo::qdrant::POINTS_FILE)).expect("load points");
        QdrantWorld { dir, qdrant, points }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A copy of the pristine recon.db, for one engine run.
    pub fn copy_db(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::copy(self.data().join("recon.db"), &p).expect("copy db");
        // Migrated as RECON does at start-up, so rows can be read before a run.
        companion::recon::db::migrate(&mut Connection::open(&p).expect("open")).expect("migrate");
        p
    }

    /// A config on `db` with the given source, pointing at the stand-in.
    pub fn config(&self, db: &Path, kind: SourceKind) -> Config {
        let mut cfg = Config {
            recon_db: db.to_path_buf(),
            concepts_dir: self.data().join("concepts"),
            reports_dir: self.dir.path().join("reports"),
            concept_source: kind,
            ..Config::default()
        };
        cfg.qdrant.url = self.qdrant.url();
        cfg.qdrant.collection = self.qdrant.collection().to_string();
        cfg.qdrant.retry_base_ms = 5;
        cfg.qdrant.timeout = Duration::from_secs(2);
        // Each run reads Qdrant (fault tests need the requests); the tests of
        // saved counts switch reuse on.
        cfg.qdrant.reuse_counts_secs = 0;
        cfg
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
