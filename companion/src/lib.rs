//! recon-companion: assigns RECON knowledge domains to PeerTube videos, pushes them
//! to PeerTube, and can undo every change it makes.
//!
//! Layers point down only: `cli` (flags) → `server` (HTTP) → operations
//! (`engine`, `peertube`, `explain`) → `recon` (RECON's database and concept
//! sources) → `assign` (pure rules) → `shared_constants`. See docs/architecture.md.

pub mod assign;
pub mod cli;
pub mod config;
pub mod context;
pub mod demo;
pub mod engine;
pub mod error;
pub mod explain;
pub mod output;
pub mod peertube;
pub mod recon;
pub mod server;
pub mod support;

pub use error::{Error, Result};
