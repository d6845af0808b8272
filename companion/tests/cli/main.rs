//! The companion's CLI tests, one binary: each module runs the built
//! `recon-companion` on generated RECON data (`cargo test -p recon-companion --test cli [filter]`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failing loudly is the point

mod common;

mod engine_cli;
mod explain_cli;
mod taxonomy_cli;
