//! The one integration-test binary of the workspace: every cross-crate and
//! end-to-end suite is a module here, so the suite links once (`cargo test -p
//! integration-tests --test it [filter]`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failing loudly is the point

mod server_support;

mod explain_rules;
mod explain_sources;
mod layers;
mod people_adopt;
mod people_first;
mod plugin_parity;
mod push_api;
mod push_db;
mod pyjson_differential;
mod qdrant_client;
mod qdrant_real;
mod qdrant_source;
mod reassess;
mod reassess_qdrant;
mod server_browser;
mod server_http;
mod server_qdrant;
mod server_security;
mod server_worker;
mod ship_metrics;
mod ship_package;
