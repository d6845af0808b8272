#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine, idempotently;
# seconds when everything is already present.
#
#   scripts/setup.sh --companion  building and running the companion: cargo only
#   scripts/setup.sh              + building the plugin (scripts/run.sh): node/npm,
#                                 wasm-opt, a wasm32 target, wasm-bindgen-cli pinned to Cargo.lock
#   scripts/setup.sh --test       + what only the tests need (scripts/test.sh): rustfmt,
#                                 clippy, chromium and the browser test's npm packages,
#                                 promtool, systemd-analyze, cargo-deb (pinned in package.sh);
#                                 reports which Qdrant binary the real-server tests use
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=run
case "${1:-}" in
  "") ;;
  --companion) MODE=companion ;;
  --test) MODE=test ;;
  *) echo "setup: unknown argument $1 (--companion, --test or nothing)" >&2; exit 2 ;;
esac

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# apt_install PKG...: installs the ones not installed yet (one `apt-get update` per run).
APT_UPDATED=0
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  log "apt install ${missing[*]}"
  if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- the companion: cargo (rustup's toolchain) -------------------------------
command -v cargo >/dev/null || { log "cargo not found: install rustup (https://rustup.rs)"; exit 1; }
[ -f Cargo.lock ] || cargo generate-lockfile -q
[ "$MODE" = companion ] && { log "ready (companion)"; exit 0; }

# --- the plugin: node, wasm-opt, wasm32, wasm-bindgen --------------------------
# node/npm may come from elsewhere (nodesource, nvm): ask apt only when absent.
pkgs=(binaryen)
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
apt_install "${pkgs[@]}"

if rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  log "wasm32 target: rustup"
elif [ ! -f target/.wasm-route-debian ] && timeout 30 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
  log "wasm32 target: installed with rustup"
else
  # rustup's server is unreachable on some networks (it hangs: hence the
  # timeout): Debian's rustc-web builds std from source instead
  # (shared/reference/wasm-toolchain.md). Only this route needs these packages.
  mkdir -p target && touch target/.wasm-route-debian
  log "wasm32 target: Debian rustc-web + build-std (rustup unreachable)"
  apt_install lld-22 rustc-web cargo-web rust-web-src
fi

WB_VER=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$WB_VER" ]; then
  # The dev profile without debug info builds in about half the time of a
  # release build; wasm-bindgen then takes well under a second on the plugin's
  # small module, so the optimised build would buy nothing here.
  log "cargo install --debug wasm-bindgen-cli $WB_VER (about 2 minutes)"
  # Not --locked first: its lockfile pins crate versions some registry mirrors lack.
  CARGO_PROFILE_DEV_DEBUG=0 cargo install -q --debug wasm-bindgen-cli --version "$WB_VER" \
    || CARGO_PROFILE_DEV_DEBUG=0 cargo install -q --debug wasm-bindgen-cli --version "$WB_VER" --locked
fi

# npm_install DIR: `npm ci` when DIR's package.json is newer than its node_modules.
npm_install() {
  local d=$1
  [ -f "$d/package.json" ] || return 0
  if [ ! -d "$d/node_modules" ] || [ "$d/package.json" -nt "$d/node_modules" ]; then
    log "npm install in $d"
    (cd "$d" && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi)
    touch "$d/node_modules"
  fi
}
npm_install plugin-js
[ "$MODE" = run ] && { log "ready (run)"; exit 0; }

# --- the tests only ----------------------------------------------------------
# chromium: the dashboard's browser test; prometheus: promtool for the alert
# rules; systemd: systemd-analyze for the packaged unit.
# python3: the reference implementations the differential tests compare with.
pkgs=(chromium prometheus)
command -v python3 >/dev/null || pkgs+=(python3)
command -v systemd-analyze >/dev/null || pkgs+=(systemd)
apt_install "${pkgs[@]}"
command -v promtool >/dev/null || { log "promtool missing after installing prometheus"; exit 1; }
command -v systemd-analyze >/dev/null || { log "systemd-analyze missing after installing systemd"; exit 1; }

# fmt and clippy gate CI (scripts/test.sh); a minimal rustup profile lacks them.
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || timeout 120 rustup component add "$c" >/dev/null 2>&1 || log "could not add $c"
done

# cargo-deb for the package test, at the version scripts/package.sh pins.
DEB_VER=$(sed -n 's/^CARGO_DEB_VERSION=//p' scripts/package.sh)
have=$(cargo deb --version 2>/dev/null | awk '{print $2}' || true)
if [ "${have#v}" != "$DEB_VER" ]; then
  log "cargo install cargo-deb $DEB_VER (about 2 minutes)"
  cargo install -q cargo-deb --version "$DEB_VER" --locked
fi

npm_install tests/browser
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
log "ready (test)"
