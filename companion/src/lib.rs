//! recon-companion: assigns RECON knowledge domains to PeerTube videos, pushes them
//! to PeerTube, and can undo every change it makes.
//!
//! Pure logic (`assign`, `pyjson`) is kept apart from I/O (`recondb`, `concepts`,
//! `peertube`), so the rules are tested with plain values.

pub mod error;
pub mod config;
pub mod pyjson;
pub mod concepts;
pub mod assign;
pub mod recondb;
pub mod journal;
pub mod rollback;
pub mod lock;
pub mod engine;
pub mod report;
pub mod output;
pub mod demo;
pub mod cli;
pub mod push;
pub mod peertube;
pub mod bench;
pub mod server;
pub mod explain;
pub mod retry;
pub mod qdrant;

pub use error::{Error, Result};
