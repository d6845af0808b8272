#!/usr/bin/env bash
# Sets everything up, builds the plugin tarball, prints the taxonomy, and walks
# the runbook (dry run, migrate, backfill, tiebreaker, status) on a generated
# RECON data dir in ./demo-data.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-plugin.sh
cargo build -q --release -p recon-companion
bin=target/release/recon-companion
"$bin" taxonomy
"$bin" demo --dir demo-data --docs "${DEMO_DOCS:-3000}" --force "$@"
