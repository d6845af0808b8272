//! Prometheus metrics of the service (OpenMetrics text at `/metrics`): documents
//! by status, pushes, worker freshness, backlog, request latency, PeerTube's and
//! Qdrant's readiness, and the drift the last `reconcile` found (kept in
//! `companion_state` so the service can export what the CLI saw).

use crate::error::Result;
use crate::recon::db as recondb;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicU64;

/// `companion_state` key of [`LastReconcile`].
pub const LAST_RECONCILE_KEY: &str = "last_reconcile";

/// What the last `reconcile` found, for `recon_companion_drift_videos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastReconcile {
    /// Unix seconds when it finished.
    pub at: i64,
    /// Pushed documents whose video's category differed (or was gone) in PeerTube.
    pub drift: u64,
}

/// Stores a reconcile's result (the CLI calls this after each `reconcile`).
pub fn record_reconcile(conn: &Connection, r: LastReconcile) -> Result<()> {
    let value = serde_json::to_string(&r).map_err(|e| crate::error::Error::Other(format!("last_reconcile: {e}")))?;
    recondb::retry_busy(|| recondb::state_set(conn, LAST_RECONCILE_KEY, &value))
}

/// The stored result, if a reconcile ever ran (an unreadable value counts as none).
pub fn last_reconcile(conn: &Connection) -> Result<Option<LastReconcile>> {
    Ok(recondb::state_get(conn, LAST_RECONCILE_KEY)?.and_then(|v| serde_json::from_str(&v).ok()))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The route template (`/api/items/{hash}`), never the raw path: bounded cardinality.
    pub route: String,
    pub code: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … ~4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    pub documents: Family<StatusLabel, Gauge>,
    pub pushes: Family<ResultLabel, Counter>,
    pub worker_last_tick_age: Gauge<f64, AtomicU64>,
    pub worker_ticks: Family<ResultLabel, Counter>,
    pub backlog: Family<KindLabel, Gauge>,
    pub push_paused: Gauge,
    pub peertube_ready: Gauge,
    /// 1 ready, 0 not, -1 when Qdrant is not the concept source.
    pub qdrant_ready: Gauge,
    /// Drift the last reconcile found; -1 before the first.
    pub drift_videos: Gauge,
    pub last_reconcile_timestamp: Gauge,
    pub stale_assignments: Gauge,
    pub requests: Family<RouteLabels, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("recon_companion");
        let documents = Family::<StatusLabel, Gauge>::default();
        registry.register("documents", "Documents by recon_domain_status (unassigned: complete PeerTube documents not looked at yet)", documents.clone());
        let pushes = Family::<ResultLabel, Counter>::default();
        registry.register("pushes", "Pushes to PeerTube by the service, by result", pushes.clone());
        let worker_last_tick_age = Gauge::<f64, AtomicU64>::default();
        registry.register("worker_last_tick_age_seconds", "Seconds since the worker last finished a tick", worker_last_tick_age.clone());
        let worker_ticks = Family::<ResultLabel, Counter>::default();
        registry.register("worker_ticks", "Worker ticks by result (ok, skipped: writer lock held, error)", worker_ticks.clone());
        let backlog = Family::<KindLabel, Gauge>::default();
        registry.register("backlog", "Work waiting: unassigned new documents, unpushed assignments, queued pushes", backlog.clone());
        let push_paused = Gauge::default();
        registry.register("push_paused", "1 while the push kill switch is on", push_paused.clone());
        let peertube_ready = Gauge::default();
        registry.register("peertube_ready", "1 when PeerTube was reachable and in parity at the last check", peertube_ready.clone());
        let qdrant_ready = Gauge::default();
        registry.register(
            "qdrant_ready",
            "1 when Qdrant answered with the collection and the sampled documents at the last check (every 15 s at most), 0 when not, -1 when Qdrant is not the concept source",
            qdrant_ready.clone(),
        );
        let drift_videos = Gauge::default();
        registry.register(
            "drift_videos",
            "Pushed videos whose PeerTube category differed from recon.db at the last `reconcile` (-1: never reconciled)",
            drift_videos.clone(),
        );
        let last_reconcile_timestamp = Gauge::default();
        registry.register("last_reconcile_timestamp_seconds", "Unix time of the last `reconcile` (0: never)", last_reconcile_timestamp.clone());
        let stale_assignments = Gauge::default();
        registry.register(
            "stale_assignments",
            "Machine-decided assignments RECON's data changed since (newer enriched_at/embedded_at, concept files, or Qdrant counts): run assign-categories --reassess",
            stale_assignments.clone(),
        );
        let requests = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("http_request_duration_seconds", "HTTP request latency by route", requests.clone());
        for r in ["ok", "failed"] {
            let _ = pushes.get_or_create(&ResultLabel { result: r.into() });
        }
        // Every result from the start: an alert on errors needs the series before the first one.
        for r in ["ok", "skipped", "error"] {
            let _ = worker_ticks.get_or_create(&ResultLabel { result: r.into() });
        }
        drift_videos.set(-1);
        Metrics {
            registry,
            documents,
            pushes,
            worker_last_tick_age,
            worker_ticks,
            backlog,
            push_paused,
            peertube_ready,
            qdrant_ready,
            drift_videos,
            last_reconcile_timestamp,
            stale_assignments,
            requests,
        }
    }

    pub fn set_documents(&self, status: &str, n: u64) {
        self.documents.get_or_create(&StatusLabel { status: status.to_string() }).set(n as i64);
    }

    pub fn set_backlog(&self, kind: &str, n: u64) {
        self.backlog.get_or_create(&KindLabel { kind: kind.to_string() }).set(n as i64);
    }

    pub fn count_push(&self, ok: bool, n: u64) {
        let result = if ok { "ok" } else { "failed" };
        self.pushes.get_or_create(&ResultLabel { result: result.into() }).inc_by(n);
    }

    pub fn count_tick(&self, result: &str) {
        self.worker_ticks.get_or_create(&ResultLabel { result: result.into() }).inc();
    }

    pub fn set_last_reconcile(&self, last: Option<LastReconcile>) {
        let (drift, at) = last.map(|r| (i64::try_from(r.drift).unwrap_or(i64::MAX), r.at)).unwrap_or((-1, 0));
        self.drift_videos.set(drift);
        self.last_reconcile_timestamp.set(at);
    }

    pub fn observe_request(&self, method: &str, route: &str, code: u16, secs: f64) {
        self.requests.get_or_create(&RouteLabels { method: method.to_string(), route: route.to_string(), code: code.to_string() }).observe(secs);
    }

    /// The registry as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_family() {
        let m = Metrics::new();
        m.set_documents("tied_manual", 7);
        m.count_push(true, 3);
        m.count_push(false, 1);
        m.set_backlog("unpushed", 5);
        m.worker_last_tick_age.set(1.5);
        m.stale_assignments.set(4);
        m.observe_request("GET", "/peertube/review", 200, 0.002);
        let text = m.encode();
        assert!(text.contains(r#"recon_companion_documents{status="tied_manual"} 7"#), "{text}");
        assert!(text.contains(r#"recon_companion_pushes_total{result="ok"} 3"#), "{text}");
        assert!(text.contains(r#"recon_companion_pushes_total{result="failed"} 1"#), "{text}");
        assert!(text.contains(r#"recon_companion_backlog{kind="unpushed"} 5"#), "{text}");
        assert!(text.contains("recon_companion_worker_last_tick_age_seconds 1.5"), "{text}");
        assert!(text.contains("recon_companion_stale_assignments 4"), "{text}");
        assert!(text.contains("recon_companion_http_request_duration_seconds_bucket"), "{text}");
        assert!(text.contains(r#"recon_companion_worker_ticks_total{result="error"} 0"#), "{text}");
        assert!(text.contains("recon_companion_drift_videos -1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn last_reconcile_round_trips_through_companion_state() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE companion_state(key TEXT PRIMARY KEY, value TEXT, updated_at TEXT)").unwrap();
        assert_eq!(last_reconcile(&conn).unwrap(), None);
        let r = LastReconcile { at: 1_790_000_000, drift: 4 };
        record_reconcile(&conn, r).unwrap();
        assert_eq!(last_reconcile(&conn).unwrap(), Some(r));
        let m = Metrics::new();
        m.set_last_reconcile(Some(r));
        let text = m.encode();
        assert!(text.contains("recon_companion_drift_videos 4"), "{text}");
        assert!(text.contains("recon_companion_last_reconcile_timestamp_seconds 1790000000"), "{text}");
    }
}
