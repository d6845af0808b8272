//! PeerTube: the two push transports (REST API, PostgreSQL), the preflight,
//! push runs with their journal, rollback, reconcile and reset, and a
//! stand-in of PeerTube's API for tests and the benchmark.

pub mod adaptive;
pub mod adopt;
pub mod api;
pub mod db;
pub mod ledger;
pub mod limiter;
pub mod people;
pub mod preflight;
pub mod push;
pub mod reconcile;
pub mod restore;
pub mod video_id;
