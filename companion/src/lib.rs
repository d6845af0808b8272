//! recon-companion: assigns RECON knowledge domains to PeerTube videos, pushes them
//! to PeerTube, and can undo every change it makes.
//!
//! Modules use only the layers below them: `cli` → `server`, `demo` → `explain`
//! → `engine`, `peertube` → `journal` → `context` → `recon` → `assign`, `config`
//! → `output`, `support` → `error` (checked by tests/tests/it/layers.rs; see
//! docs/architecture.md).

pub mod assign;
pub mod cli;
pub mod config;
pub mod context;
pub mod demo;
pub mod engine;
pub mod error;
pub mod explain;
pub mod journal;
pub mod output;
pub mod peertube;
pub mod recon;
pub mod server;
pub mod support;

pub use error::{Error, Result};
