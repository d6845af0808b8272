#!/usr/bin/env bash
# Sets everything up (what running needs and what only the tests need), then
# runs every test: Rust (unit, integration, parity, PostgreSQL, browser, the
# .deb, the alert rules and dashboard) and the plugin's JS tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# Style gates first: they fail in seconds, before the long builds.
cargo fmt --all --check
cargo clippy -q --workspace --all-targets -- -D warnings
# PostgreSQL-backed tests take their server from this URL (a user's machine may differ).
export RECON_COMPANION_TEST_PG_URL="${RECON_COMPANION_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
scripts/build-plugin.sh
(cd plugin-js && npm test)
cargo build -q -p recon-companion
cargo test -p plugin-wasm --lib
# Doc-tests are skipped (there are none): the run then ends on a real test binary.
cargo test --workspace --exclude plugin-wasm --lib --bins --tests
