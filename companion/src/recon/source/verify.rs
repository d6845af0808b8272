//! `verify-qdrant` (and `/readyz` with the Qdrant source): the collection, its `doc_hash` index, and a sample of recon.db's documents in it.

use std::path::Path;

use serde::Serialize;

use super::{block_on, qdrant_client};
use crate::config::qdrant::QdrantSettings;
use crate::recon::qdrant::CountsBatch;

/// What `verify-qdrant` (and `/readyz` with the Qdrant source) found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QdrantCheck {
    pub ok: bool,
    pub url: String,
    pub collection: String,
    pub collection_found: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub points_count: Option<u64>,
    pub doc_hash_indexed: bool,
    /// Each shard's last write operation (`recon::qdrant::parse_write_marks`):
    /// what proves saved counts still hold; `None` when the server shows none
    /// (every run then reads afresh).
    pub write_marks: Option<Vec<u64>>,
    /// What requests will cost, and the fix, when `doc_hash` has no index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_advice: Option<String>,
    /// Complete PeerTube documents sampled from recon.db, and how many have points.
    pub sampled: u64,
    pub sample_found: u64,
    pub sample: Vec<(String, u64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Checks the collection exists, its size and `doc_hash` index, and that a
/// sample of recon.db's complete PeerTube documents has points there. `ok`
/// needs the collection and, when the sample is not empty, at least one
/// sampled document found (otherwise the collection or the source is wrong).
pub fn verify_qdrant(settings: &QdrantSettings, recon_db: &Path, peertube_source: &str, sample: u64) -> QdrantCheck {
    let mut c = QdrantCheck { url: settings.url.clone(), collection: settings.collection.clone(), ..QdrantCheck::default() };
    let hashes = match crate::recon::db::open_readonly(recon_db).and_then(|conn| crate::recon::db::sample_complete_stream(&conn, peertube_source, sample)) {
        Ok(h) => h,
        Err(e) => {
            c.error = Some(format!("reading the sample from recon.db: {e}"));
            Vec::new()
        }
    };
    let client = match qdrant_client(settings) {
        Ok(cl) => cl,
        Err(e) => {
            c.error = Some(e.to_string());
            return c;
        }
    };
    let res = block_on(async {
        let mut info = client.collection_info().await?;
        info.write_marks = client.write_marks().await;
        let batch = if hashes.is_empty() { CountsBatch::default() } else { client.counts_for(&hashes).await? };
        Ok((info, batch))
    });
    match res {
        Ok((info, batch)) => {
            c.collection_found = true;
            c.status = Some(info.status.clone());
            c.points_count = info.points_count;
            c.doc_hash_indexed = info.is_indexed("doc_hash");
            c.write_marks = info.write_marks.clone();
            if !c.doc_hash_indexed {
                c.index_advice = Some(format!(
                    "doc_hash has no payload index: every filtered request scans all {} points' payloads, so runs use one unfiltered scroll \
                     of the whole collection instead (strategy auto). Add the index: curl -X PUT {}/collections/{}/index -H 'Content-Type: application/json' \
                     -d '{{\"field_name\":\"doc_hash\",\"field_schema\":\"keyword\"}}'",
                    info.points_count.map(|n| n.to_string()).unwrap_or_else(|| "the".into()),
                    settings.url.trim_end_matches('/'),
                    settings.collection
                ));
            }
            c.sampled = hashes.len() as u64;
            c.sample = hashes.iter().map(|h| (h.clone(), batch.counts.get(h).map(|d| d.points).unwrap_or(0))).collect();
            c.sample_found = c.sample.iter().filter(|(_, p)| *p > 0).count() as u64;
            if let Some((_, e)) = batch.failed.first() {
                c.error = Some(e.clone());
            }
            c.ok = c.error.is_none() && (c.sampled == 0 || c.sample_found > 0);
        }
        Err(e) => c.error = Some(e.to_string()),
    }
    c
}
