//! A real Qdrant server for tests: found on this machine, started in a temp dir on free ports, loaded over its REST API, stopped on drop.
//!
//! The binary is looked up in this order: `QDRANT_BIN`, `../shared/qdrant/qdrant`
//! beside the workspace (where CI and the sessions' machines keep it), then
//! `qdrant` on `PATH`. When none is found the test fails with a message saying
//! how to provide one: a real-server test never passes without a server.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How a test provides the server when none is found.
pub const HOW_TO_PROVIDE: &str = "no Qdrant server binary found: set QDRANT_BIN=/path/to/qdrant, \
     or put Qdrant 1.19 at ../shared/qdrant/qdrant beside the workspace, or `qdrant` on PATH \
     (scripts/setup.sh says which one it found)";

/// The Qdrant binary tests use, or why there is none.
pub fn qdrant_bin() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("QDRANT_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(format!("QDRANT_BIN={} is not a file; {HOW_TO_PROVIDE}", p.display())) };
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let beside = workspace.join("../shared/qdrant/qdrant");
    if beside.is_file() {
        return Ok(beside.canonicalize().unwrap_or(beside));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("qdrant");
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    Err(HOW_TO_PROVIDE.to_string())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free local port")
}

/// One running Qdrant process with its own storage; killed (and its dir removed) on drop.
pub struct QdrantServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    http_port: u16,
    grpc_port: u16,
    api_key: Option<String>,
    child: Option<Child>,
    http: reqwest::Client,
}

impl QdrantServer {
    /// Starts a server without auth. Panics (failing the test) with [`HOW_TO_PROVIDE`] when no binary is found.
    pub async fn start() -> QdrantServer {
        QdrantServer::launch(None).await
    }

    /// Starts a server that requires `api-key: key` on every request.
    pub async fn start_with_api_key(key: &str) -> QdrantServer {
        QdrantServer::launch(Some(key.to_string())).await
    }

    async fn launch(api_key: Option<String>) -> QdrantServer {
        let bin = qdrant_bin().unwrap_or_else(|why| panic!("{why}"));
        let dir = tempfile::tempdir().expect("temp dir for qdrant");
        let mut s = QdrantServer { dir, bin, http_port: free_port(), grpc_port: free_port(), api_key, child: None, http: reqwest::Client::new() };
        s.spawn().await;
        s
    }

    async fn spawn(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(d.join("qdrant.log")).expect("qdrant log file");
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(d)
            .env("QDRANT__SERVICE__HOST", "127.0.0.1")
            .env("QDRANT__SERVICE__HTTP_PORT", self.http_port.to_string())
            .env("QDRANT__SERVICE__GRPC_PORT", self.grpc_port.to_string())
            // Off: no report leaves the machine. (It also turns off the
            // request counters of /metrics: requests are counted by the
            // client, or by `qdrant_real_world::CountingProxy`.)
            .env("QDRANT__TELEMETRY_DISABLED", "true")
            .env("QDRANT__STORAGE__STORAGE_PATH", d.join("storage"))
            .env("QDRANT__STORAGE__SNAPSHOTS_PATH", d.join("snapshots"))
            .env("QDRANT__STORAGE__TEMP_PATH", d.join("tmp"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        if let Some(k) = &self.api_key {
            cmd.env("QDRANT__SERVICE__API_KEY", k);
        }
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("qdrant exited at start ({status}); its log:\n{}", self.log());
                }
            }
            // /readyz needs no key even with auth on.
            if let Ok(r) = self.http.get(format!("{}/readyz", self.url())).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("qdrant not ready after 30 s; its log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `http://127.0.0.1:{port}`, the REST base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The server's process id while it runs (for its CPU time in benchmarks).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The gRPC port (for clients that use it).
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("qdrant.log")).unwrap_or_default()
    }

    /// Kills the process at once (SIGKILL); storage stays for [`QdrantServer::restart`].
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again on the same ports and storage.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// One REST call with the server's key; panics on a non-2xx answer (a fixture step that failed).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.try_call(method.clone(), path, body).await;
        assert!((200..300).contains(&status), "qdrant {method} {path}: HTTP {status}: {v}");
        v
    }

    /// One REST call with the server's key: (HTTP status, JSON body or the text as a string).
    pub async fn try_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url()));
        if let Some(k) = &self.api_key {
            req = req.header("api-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("qdrant request");
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Creates `name` without vectors (domain counting needs payloads only), with vector indexing off.
    pub async fn create_collection(&self, name: &str) {
        self.call(reqwest::Method::PUT, &format!("/collections/{name}"), Some(json!({"vectors": {}, "optimizers_config": {"indexing_threshold": 0}}))).await;
    }

    /// A keyword payload index on `doc_hash`, as the runbook advises.
    pub async fn index_doc_hash(&self, name: &str) {
        self.call(reqwest::Method::PUT, &format!("/collections/{name}/index?wait=true"), Some(json!({"field_name": "doc_hash", "field_schema": "keyword"})))
            .await;
    }

    pub async fn delete_collection(&self, name: &str) {
        self.call(reqwest::Method::DELETE, &format!("/collections/{name}"), None).await;
    }

    /// Upserts `(id, payload)` points in batches of 2,000 and waits for each batch.
    pub async fn upsert(&self, name: &str, points: &[(u64, Value)]) {
        for chunk in points.chunks(2_000) {
            let pts: Vec<Value> = chunk.iter().map(|(id, p)| json!({"id": id, "vector": {}, "payload": p})).collect();
            self.call(reqwest::Method::PUT, &format!("/collections/{name}/points?wait=true"), Some(json!({"points": pts}))).await;
        }
    }

    /// Loads a `{"id": u64, "payload": {...}}` JSONL file (the demo's `qdrant-points.jsonl`); returns the number of points.
    pub async fn load_jsonl(&self, name: &str, path: impl AsRef<Path>) -> usize {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut points = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), i + 1));
            let id = v.get("id").and_then(Value::as_u64).unwrap_or_else(|| panic!("{} line {}: no id", path.display(), i + 1));
            points.push((id, v.get("payload").cloned().unwrap_or_else(|| json!({}))));
        }
        self.upsert(name, &points).await;
        points.len()
    }

    /// RECON-style in-place payload rewrite: sets `payload` on every point whose `doc_hash` is `doc_hash`.
    pub async fn set_payload_of_document(&self, name: &str, doc_hash: &str, payload: Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/collections/{name}/points/payload?wait=true"),
            Some(json!({"payload": payload, "filter": {"must": [{"key": "doc_hash", "match": {"value": doc_hash}}]}})),
        )
        .await;
    }

    /// `points_count` of the collection.
    pub async fn points_count(&self, name: &str) -> u64 {
        let v = self.call(reqwest::Method::GET, &format!("/collections/{name}"), None).await;
        v["result"]["points_count"].as_u64().expect("points_count")
    }
}

impl Drop for QdrantServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_loads_rewrites_and_survives_a_restart() {
        let mut q = QdrantServer::start_with_api_key("k-123").await;
        q.create_collection("c").await;
        q.index_doc_hash("c").await;
        q.upsert("c", &[(1, json!({"doc_hash": "a", "domain": "Medicine"})), (2, json!({"doc_hash": "b", "domain": "Law"}))]).await;
        assert_eq!(q.points_count("c").await, 2);
        q.set_payload_of_document("c", "a", json!({"domain": "Energy"})).await;
        q.restart().await;
        let v = q.call(reqwest::Method::POST, "/collections/c/points/scroll", Some(json!({"limit": 10, "with_payload": true}))).await;
        assert_eq!(v["result"]["points"][0]["payload"]["domain"], "Energy", "{v}");
        // Without the key the real server refuses.
        let (status, _) = q.http.get(format!("{}/collections/c", q.url())).send().await.map(|r| (r.status().as_u16(), ())).expect("send");
        assert_eq!(status, 401);
    }
}
