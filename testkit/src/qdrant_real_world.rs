//! A test world around a real Qdrant server: the demo's RECON data (recon.db + concept files) with its points loaded into a [`QdrantServer`], optionally padded to production size (other sources' points, ~500-byte payload texts).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use companion::config::Config;
use companion::config::SourceKind;
use companion::context::Env;
use companion::demo::{self, DemoSpec};
use serde_json::{json, Value};
use shared_constants::DOMAINS;

use crate::qdrant_server::QdrantServer;
use crate::qdrant_world::{copy_db, world_config};

/// The collection name RECON uses in production.
pub const COLLECTION: &str = "recon_knowledge_hybrid";

/// How the demo's points are loaded.
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// Points of another source (PDFs) added until they are this share of
    /// the collection (0: only the demo's own).
    pub other_share: f64,
    /// Bytes of `content` text added to every point's payload, as RECON's
    /// concepts carry (0: none).
    pub text_bytes: usize,
    /// A keyword index on `doc_hash` before the points go in.
    pub index_doc_hash: bool,
    /// `QDRANT__SERVICE__API_KEY`.
    pub api_key: Option<String>,
}

pub struct RealQdrantWorld {
    /// Declared first: dropped (the process killed) before the data dir is removed.
    pub server: QdrantServer,
    pub dir: tempfile::TempDir,
    pub collection: String,
    /// What the demo wrote as points.
    pub points: demo::qdrant::PointsSummary,
    /// Points in the collection (the demo's plus padding).
    pub loaded: u64,
    pub load_seconds: f64,
}

impl RealQdrantWorld {
    /// `docs` demo videos (seed `seed`), their points in a new real server.
    pub async fn new(docs: usize, seed: u64, load: Load) -> RealQdrantWorld {
        RealQdrantWorld::with_spec(DemoSpec { seed, ..DemoSpec::demo(docs) }, load).await
    }

    pub async fn with_spec(spec: DemoSpec, load: Load) -> RealQdrantWorld {
        let (dir, data, points) = crate::qdrant_world::demo_with_points(spec).await;
        let server = match &load.api_key {
            Some(k) => QdrantServer::start_with_api_key(k).await,
            None => QdrantServer::start().await,
        };
        server.create_collection(COLLECTION).await;
        if load.index_doc_hash {
            server.index_doc_hash(COLLECTION).await;
        }
        let t = Instant::now();
        let loaded = load_padded(&server, COLLECTION, &data.join(demo::qdrant::POINTS_FILE), &load).await;
        let load_seconds = t.elapsed().as_secs_f64();
        wait_green(&server, COLLECTION).await;
        RealQdrantWorld { dir, server, collection: COLLECTION.to_string(), points, loaded, load_seconds }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Whether the collection lists a payload index on `doc_hash`.
    pub async fn doc_hash_indexed(&self) -> bool {
        let v = self.server.call(reqwest::Method::GET, &format!("/collections/{}", self.collection), None).await;
        v["result"]["payload_schema"].get("doc_hash").is_some()
    }

    /// A copy of the pristine recon.db, for one engine run.
    pub fn copy_db(&self, name: &str) -> PathBuf {
        copy_db(self.dir.path(), name)
    }

    /// A config on `db` with the given source, pointing at the real server.
    pub fn config(&self, db: &Path, kind: SourceKind) -> Config {
        let mut cfg = world_config(self.dir.path(), db, kind, &self.server.url(), &self.collection);
        // A real server answers a 1.5M-point page in well under this.
        cfg.qdrant.timeout = Duration::from_secs(30);
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

/// Waits until the collection is green (its optimizer done), so timings
/// measure reads, not indexing.
pub async fn wait_green(server: &QdrantServer, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let v = server.call(reqwest::Method::GET, &format!("/collections/{name}"), None).await;
        if v["result"]["status"] == "green" {
            return;
        }
        assert!(Instant::now() < deadline, "collection {name} not green after 600 s: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 60-bit id from a counter (splitmix64), spread like RECON's md5-derived ids.
fn spread_id(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) >> 4
}

/// Loads the demo's JSONL with `load`'s padding, two 2,000-point upserts in
/// flight (the server indexes one while the other is sent); returns the points loaded.
pub async fn load_padded(server: &QdrantServer, name: &str, jsonl: &Path, load: &Load) -> u64 {
    let text: String = "concept text for a loaded payload; ".repeat(load.text_bytes / 35 + 1).chars().take(load.text_bytes).collect();
    let file = std::fs::File::open(jsonl).unwrap_or_else(|e| panic!("{}: {e}", jsonl.display()));
    let mut points: Vec<(u64, Value)> = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.expect("read points");
        if line.trim().is_empty() {
            continue;
        }
        let mut v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{} line {}: {e}", jsonl.display(), i + 1));
        let id = v["id"].as_u64().unwrap_or_else(|| panic!("{} line {}: no id", jsonl.display(), i + 1));
        let mut payload = v["payload"].take();
        if load.text_bytes > 0 {
            payload["content"] = json!(text);
        }
        points.push((id, payload));
    }
    let own = points.len() as u64;
    if load.other_share > 0.0 && load.other_share < 1.0 {
        let others = (own as f64 * load.other_share / (1.0 - load.other_share)) as u64;
        // PDFs of ~370 concepts each, as RECON's library holds.
        for n in 0..others {
            let doc = format!("{:064x}", u128::from(spread_id(n / 370 + (1 << 40))));
            let mut payload = json!({"doc_hash": doc, "domain": DOMAINS[(n % 18) as usize].label, "source_type": "pdf", "title": format!("pdf concept {n}")});
            if load.text_bytes > 0 {
                payload["content"] = json!(text);
            }
            points.push((spread_id(n + (1 << 50)), payload));
        }
    }
    let half = points.len().div_ceil(2);
    let (a, b) = points.split_at(half);
    tokio::join!(server.upsert(name, a), server.upsert(name, b));
    points.len() as u64
}

/// A TCP proxy in front of a server that counts the HTTP requests passing
/// through (per path prefix), so a test can act when a real server has
/// answered some of a run's requests (Qdrant itself counts none with its
/// telemetry off). A connection the server refuses is closed at once.
pub struct CountingProxy {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on 127.0.0.1:0 and forwards every connection to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> CountingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
        let s2 = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let (up, seen) = (upstream.clone(), s2.clone());
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&up).await else { return };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let upward = async {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            // Request lines start a chunk (the client writes each request whole).
                            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                                if let Some(rest) = line.strip_prefix("POST ").or_else(|| line.strip_prefix("GET ")) {
                                    seen.lock().unwrap_or_else(|p| p.into_inner()).push(rest.split(' ').next().unwrap_or("").to_string());
                                }
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let downward = async {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        use tokio::io::AsyncWriteExt;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(upward, downward);
                });
            }
        });
        CountingProxy { addr, seen, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen whose path contains `needle`.
    pub fn requests(&self, needle: &str) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|p| p.contains(needle)).count()
    }

    /// Waits until `n` requests whose path contains `needle` went through.
    pub async fn wait_for(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.requests(needle) < n {
            assert!(Instant::now() < deadline, "only {} of {n} {needle} requests after 120 s", self.requests(needle));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
