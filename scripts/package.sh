#!/usr/bin/env bash
# Builds the operator's package: target/debian/recon-companion_<version>-1_<arch>.deb
# (binary, systemd unit, example config as /etc/recon-companion/config.toml, the
# `recon` system user, man pages, bash/zsh/fish completions, dashboards and alert
# rules). Install it with `apt install ./target/debian/recon-companion_*.deb`.
#
#   scripts/package.sh                  release build (what an operator installs)
#   scripts/package.sh --profile dev    the debug build (the package test in CI: no
#                                       second, optimised build of the companion)
#   scripts/package.sh --no-build       package the binary already built for the profile
#
# Installs cargo-deb (pinned below) if it is missing. Prints the .deb's path last.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DEB_VERSION=3.8.0
PROFILE=release
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE="${2:?--profile needs a name}"; shift 2 ;;
    --profile=*) PROFILE="${1#--profile=}"; shift ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "package: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
log() { printf '\033[1m[package]\033[0m %s\n' "$*" >&2; }

have=$(cargo deb --version 2>/dev/null | awk '{print $2}' || true)
if [ "${have#v}" != "$CARGO_DEB_VERSION" ]; then
  log "cargo install cargo-deb $CARGO_DEB_VERSION"
  cargo install -q cargo-deb --version "$CARGO_DEB_VERSION" --locked
fi

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$PROFILE" in
  dev|debug) PROFILE=dev; PROFILE_DIR=debug ;;
  *) PROFILE_DIR="$PROFILE" ;;
esac
if [ "$BUILD" = 1 ]; then
  log "cargo build --profile $PROFILE -p recon-companion"
  cargo build -q --profile "$PROFILE" -p recon-companion
fi
BIN="$TARGET_DIR/$PROFILE_DIR/recon-companion"
[ -x "$BIN" ] || { echo "package: $BIN not built (drop --no-build)" >&2; exit 1; }

# Man pages and completions from the clap definitions of this very binary, where
# companion/Cargo.toml's [package.metadata.deb] assets expect them.
ASSETS=target/debian-assets
rm -rf "$ASSETS"
"$BIN" generate man "$ASSETS/man" >/dev/null
"$BIN" generate completions "$ASSETS/completions" >/dev/null

mkdir -p "$TARGET_DIR/debian"
rm -f "$TARGET_DIR"/debian/recon-companion_*.deb
args=(--no-build -p recon-companion --output "$TARGET_DIR/debian")
if [ "$PROFILE" = dev ]; then
  # A test package (cargo-deb warns that dev profiles are not for releases: true).
  # Stripped (the debug info is most of the binary) and quickly compressed.
  args+=(--profile dev --fast)
else
  args+=(--profile "$PROFILE")
fi
cargo deb -q "${args[@]}"
deb=$(ls "$TARGET_DIR"/debian/recon-companion_*.deb)
log "built $deb ($(stat -c %s "$deb") bytes)"
echo "$deb"
