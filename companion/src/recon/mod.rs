//! RECON's side: its SQLite database (every query the companion runs on it),
//! the schema it and the companion rely on, and the concept sources.

pub mod concepts;
pub mod db;
pub mod freshness;
pub mod hash;
pub mod pyjson;
pub mod qdrant;
pub mod saved_counts;
pub mod schema;
pub mod source;
