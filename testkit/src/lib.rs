//! The test kit: in-process stand-ins for PeerTube and Qdrant, RECON and
//! PeerTube fixtures, scratch PostgreSQL databases, and the push benchmark.
//! Only ever a dev-dependency: nothing here ships in the product.

pub mod fixture;
pub mod peertube;
pub mod push_bench;
pub mod qdrant;
pub mod world;
