//! Helpers shared by the integration tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: failing loudly is the point

pub mod plugin_parity;
