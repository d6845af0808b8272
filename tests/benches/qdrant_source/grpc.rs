//! Qdrant's official Rust client (`qdrant-client`, gRPC) reading the same collection the companion reads over REST: whole-collection slices and `match.any` chunks, counting the wanted documents' points, with the server's CPU beside it (does gRPC cost the server or us less?).

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::{Condition, Filter, PayloadIncludeSelector, PointId, RetrievedPoint, ScrollPointsBuilder};
use qdrant_client::Qdrant;
use testkit::qdrant_bench::process_cpu_seconds;
use testkit::qdrant_real_world::RealQdrantWorld;

/// The companion's id-space split (`recon::qdrant::scroll`): RECON's ids are below 2^60.
const ID_SPACE: u64 = 1 << 60;

/// One gRPC read: wall seconds, the server's and our CPU seconds, requests, and wanted points counted.
pub struct GrpcRead {
    pub seconds: f64,
    pub server_cpu: f64,
    pub own_cpu: f64,
    pub requests: u64,
    pub points: u64,
    /// Wanted documents with at least one counted point.
    pub documents: usize,
}

fn strings(v: Option<&qdrant_client::qdrant::Value>) -> Vec<&str> {
    match v.and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => vec![s.as_str()],
        Some(Kind::ListValue(l)) => l.values.iter().filter_map(|v| if let Some(Kind::StringValue(s)) = &v.kind { Some(s.as_str()) } else { None }).collect(),
        _ => Vec::new(),
    }
}

/// Counts `domain` labels per wanted document, as the companion's page parser does.
fn tally(points: &[RetrievedPoint], wanted: &HashMap<&str, usize>, counts: &mut Counts, seen: &mut u64) {
    for p in points {
        let hashes = strings(p.payload.get("doc_hash"));
        for (i, h) in hashes.iter().enumerate() {
            if hashes[..i].contains(h) {
                continue;
            }
            if let Some(&d) = wanted.get(h) {
                *seen += 1;
                let doc = counts.entry(d).or_default();
                for l in strings(p.payload.get("domain")) {
                    match doc.get_mut(l) {
                        Some(c) => *c += 1,
                        None => {
                            doc.insert(l.to_string(), 1);
                        }
                    }
                }
            }
        }
    }
}

/// Label counts per wanted document (by its index in the wanted list).
type Counts = HashMap<usize, HashMap<String, u64>>;

fn id_of(p: &RetrievedPoint) -> Option<u64> {
    match p.id.as_ref()?.point_id_options.as_ref()? {
        PointIdOptions::Num(n) => Some(*n),
        PointIdOptions::Uuid(_) => None,
    }
}

/// Reads the wanted documents' points with `parallel` requests in flight:
/// slices of the id space (`filtered: false`) or `match.any` chunks of
/// `per_request` hashes (`filtered: true`, which needs the doc_hash index to be fast).
pub async fn read(w: &RealQdrantWorld, wanted: &[String], filtered: bool, parallel: u32, per_request: usize, page: u32) -> GrpcRead {
    let url = format!("http://127.0.0.1:{}", w.server.grpc_port());
    let client = Qdrant::from_url(&url).build().expect("qdrant-client");
    let index: HashMap<&str, usize> = wanted.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect();
    let pid = w.server.pid();
    let cpu = move || pid.and_then(process_cpu_seconds).unwrap_or(f64::NAN);
    let own = || process_cpu_seconds(std::process::id()).unwrap_or(f64::NAN);
    let (c0, o0, t) = (cpu(), own(), Instant::now());
    let select = || PayloadIncludeSelector { fields: vec!["doc_hash".into(), "domain".into()] };
    let jobs: Vec<(Option<Filter>, Option<u64>, Option<u64>)> = if filtered {
        wanted.chunks(per_request.max(1)).map(|c| (Some(Filter::must([Condition::matches("doc_hash", c.to_vec())])), None, None)).collect()
    } else {
        let n = u64::from(parallel.max(1));
        (0..n).map(|k| (None, (k > 0).then(|| ID_SPACE / n * k), (k + 1 < n).then(|| ID_SPACE / n * (k + 1)))).collect()
    };
    let results: Vec<(Counts, u64, u64)> = futures::stream::iter(jobs)
        .map(|(filter, start, stop)| {
            let (client, index) = (&client, &index);
            async move {
                let mut counts = Counts::new();
                let (mut seen, mut requests) = (0u64, 0u64);
                let mut offset = start.map(PointId::from);
                loop {
                    let mut b = ScrollPointsBuilder::new(&w.collection).limit(page).with_payload(select()).with_vectors(false);
                    if let Some(f) = &filter {
                        b = b.filter(f.clone());
                    }
                    if let Some(o) = offset.take() {
                        b = b.offset(o);
                    }
                    let r = client.scroll(b).await.expect("gRPC scroll");
                    requests += 1;
                    let mine: Vec<RetrievedPoint> = r.result.into_iter().filter(|p| stop.is_none_or(|s| id_of(p).is_some_and(|id| id < s))).collect();
                    tally(&mine, index, &mut counts, &mut seen);
                    match r.next_page_offset {
                        Some(next) if stop.is_none_or(|s| matches!(next.point_id_options, Some(PointIdOptions::Num(n)) if n < s)) => offset = Some(next),
                        _ => break,
                    }
                }
                (counts, seen, requests)
            }
        })
        .buffer_unordered(parallel.max(1) as usize)
        .collect()
        .await;
    let seconds = t.elapsed().as_secs_f64();
    let (server_cpu, own_cpu) = (cpu() - c0, own() - o0);
    let points = results.iter().map(|r| r.1).sum();
    let requests = results.iter().map(|r| r.2).sum();
    let documents = results.iter().flat_map(|r| r.0.keys()).collect::<std::collections::HashSet<_>>().len();
    GrpcRead { seconds, server_cpu, own_cpu, requests, points, documents }
}
