//! Serves the test kit's Qdrant stand-in with the points `recon-companion demo
//! --qdrant-points` wrote, so the Qdrant source can be tried without RECON:
//!
//!     cargo run -p testkit --bin qdrant-standin -- demo-data/qdrant-points.jsonl
//!
//! It prints the two environment variables that point the companion at it, and
//! serves until Ctrl-C. Not a Qdrant: only the REST subset the companion uses.

use std::process::ExitCode;
use testkit::qdrant::{QdrantStandIn, StandInConfig};

#[tokio::main]
async fn main() -> ExitCode {
    let Some(points) = std::env::args().nth(1) else {
        eprintln!("usage: qdrant-standin POINTS.jsonl   (written by `recon-companion demo --qdrant-points`)");
        return ExitCode::from(2);
    };
    let standin = QdrantStandIn::start(StandInConfig::default()).await;
    // An index on doc_hash, as RECON's production collection should have one.
    standin.set_payload_index("doc_hash", "keyword");
    match standin.load_jsonl(&points) {
        Ok(n) => eprintln!("qdrant-standin: {n} points from {points} in collection {:?}", standin.collection()),
        Err(e) => {
            eprintln!("qdrant-standin: {points}: {e}");
            return ExitCode::from(1);
        }
    }
    println!("export RECON_COMPANION_CONCEPT_SOURCE=qdrant");
    println!("export RECON_COMPANION_QDRANT__URL={}", standin.url());
    println!("export RECON_COMPANION_QDRANT__COLLECTION={}", standin.collection());
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
