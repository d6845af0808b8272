#!/usr/bin/env bash
# Builds the companion and prints the taxonomy first, then sets up and builds
# the plugin tarball, then walks the runbook (dry run, migrate, backfill,
# tiebreaker, status) on a generated RECON data dir in ./demo-data.
# Installs only what running needs; scripts/test.sh adds the test tools.
#
# Order: the companion needs nothing but cargo, so its release build starts at
# once and the taxonomy is the first output; the plugin's tools (wasm32 target,
# wasm-bindgen-cli) come after it, the demo last.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --companion
cargo build -q --release -p recon-companion
bin=target/release/recon-companion
"$bin" taxonomy
scripts/setup.sh
scripts/build-plugin.sh
"$bin" demo --dir demo-data --docs "${DEMO_DOCS:-3000}" --force "$@"
