#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine, idempotently:
# apt packages, a wasm32 toolchain, wasm-bindgen-cli pinned to Cargo.lock, npm packages.
# Fast (seconds) when everything is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- apt packages -----------------------------------------------------------
# chromium: browser test of the dashboard; binaryen: wasm-opt; the rest: wasm32 std from source
# when rustup cannot fetch the target (see shared/reference/wasm-toolchain.md).
APT_PKGS=(nodejs npm python3 chromium binaryen lld-22 rustc-web cargo-web rust-web-src pkg-config)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere (nodesource, nvm): don't ask apt for them then.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || tmp+=("$p"); done; missing=("${tmp[@]+"${tmp[@]}"}")
fi
command -v python3 >/dev/null && { tmp=(); for p in "${missing[@]}"; do [[ "$p" == python3 ]] || tmp+=("$p"); done; missing=("${tmp[@]+"${tmp[@]}"}"); }
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- rust + wasm32 target -----------------------------------------------------
command -v cargo >/dev/null || { log "cargo not found: install rustup (https://rustup.rs)"; exit 1; }
if rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  log "wasm32 target: rustup"
elif [ -f target/.wasm-route-debian ]; then
  log "wasm32 target: Debian rustc-web + build-std (rustup unreachable earlier)"
elif timeout 60 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
  log "wasm32 target: installed with rustup"
else
  # rustup's server is unreachable on some networks: the Debian route builds std itself.
  mkdir -p target && touch target/.wasm-route-debian
  log "wasm32 target: rustup unreachable, using Debian rustc-web + build-std"
fi

# fmt and clippy gate CI (scripts/test.sh); rustup installs them with the toolchain
# on most machines, but a minimal profile lacks them.
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || timeout 120 rustup component add "$c" >/dev/null 2>&1 || log "could not add $c"
done

# --- wasm-bindgen-cli, pinned to the version in Cargo.lock ---------------------
[ -f Cargo.lock ] || cargo generate-lockfile -q
WB_VER=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$WB_VER" ]; then
  log "cargo install wasm-bindgen-cli $WB_VER (about 3 minutes)"
  # Not --locked: its lockfile pins crate versions some registry mirrors lack.
  cargo install -q wasm-bindgen-cli --version "$WB_VER" || cargo install -q wasm-bindgen-cli --version "$WB_VER" --locked
fi

# --- npm packages --------------------------------------------------------------
for d in plugin-js tests/browser; do
  if [ -f "$d/package.json" ]; then
    if [ ! -d "$d/node_modules" ] || [ "$d/package.json" -nt "$d/node_modules" ]; then
      log "npm install in $d"
      (cd "$d" && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi)
      touch "$d/node_modules"
    fi
  fi
done
# --- Qdrant server for the real-server tests -----------------------------------
# Tests start a real Qdrant in a temp dir (testkit/src/qdrant_server.rs), found as
# QDRANT_BIN, then ../shared/qdrant/qdrant beside the checkout, then `qdrant` on PATH.
if [ -n "${QDRANT_BIN:-}" ] && [ -x "$QDRANT_BIN" ]; then
  log "qdrant: $QDRANT_BIN (QDRANT_BIN)"
elif [ -x ../shared/qdrant/qdrant ]; then
  log "qdrant: $(cd ../shared/qdrant && pwd)/qdrant"
elif command -v qdrant >/dev/null; then
  log "qdrant: $(command -v qdrant) (PATH)"
else
  log "qdrant: NOT FOUND - the real-server tests will fail; set QDRANT_BIN=/path/to/qdrant (1.19) or put it at ../shared/qdrant/qdrant"
fi
log "ready"
