//! The test kit: in-process stand-ins for PeerTube and Qdrant, RECON and
//! PeerTube fixtures, scratch PostgreSQL databases, test worlds, and the push benchmark.
//! Only ever a dev-dependency: nothing here ships in the product.

// Test machinery, like a test body: a fixture step that cannot be done must
// fail the test at once and loudly, so `expect` is the right tool here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fixture;
pub mod peertube;
pub mod push_bench;
pub mod qdrant;
pub mod qdrant_bench;
pub mod qdrant_real_world;
pub mod qdrant_server;
pub mod qdrant_world;
pub mod world;
