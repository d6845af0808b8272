#!/usr/bin/env bash
# Builds the PeerTube plugin tarball: plugin-wasm -> wasm32 -> wasm-opt ->
# wasm-bindgen (nodejs) -> plugin-js/dist -> `npm pack` in plugin-js/.
# Idempotent: every run rebuilds dist/ and the tarball from scratch (cargo keeps
# its own incremental cache). Prints the tarball path, its size and the wasm size.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PLUGIN_JS="$ROOT/plugin-js"
DIST="$PLUGIN_JS/dist"
TARGET=wasm32-unknown-unknown
PROFILE=wasm-release

die() { echo "build-plugin: error: $*" >&2; exit 1; }
say() { echo "build-plugin: $*" >&2; }

# --- wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly:
# the CLI and the crate share an unversioned ABI, and a mismatch fails at run time.
WASM_BINDGEN="$(command -v wasm-bindgen || true)"
if [[ -z "$WASM_BINDGEN" && -x "$HOME/.cargo/bin/wasm-bindgen" ]]; then
  WASM_BINDGEN="$HOME/.cargo/bin/wasm-bindgen"
fi
LOCK_VERSION="$(awk '
  /^\[\[package\]\]/ { in_wb = 0 }
  /^name = "wasm-bindgen"$/ { in_wb = 1; next }
  in_wb && /^version = / { gsub(/"/, "", $3); print $3; exit }
' "$ROOT/Cargo.lock")"
[[ -n "$LOCK_VERSION" ]] || die "no wasm-bindgen entry in $ROOT/Cargo.lock (run: cargo generate-lockfile)"
[[ -n "$WASM_BINDGEN" ]] || die "wasm-bindgen CLI not found; install it with: cargo install wasm-bindgen-cli --version $LOCK_VERSION"
CLI_VERSION="$("$WASM_BINDGEN" --version | awk '{print $2}')"
if [[ "$CLI_VERSION" != "$LOCK_VERSION" ]]; then
  die "wasm-bindgen CLI is $CLI_VERSION ($WASM_BINDGEN) but Cargo.lock pins wasm-bindgen $LOCK_VERSION; install the matching CLI: cargo install wasm-bindgen-cli --version $LOCK_VERSION --force"
fi

# --- Compile plugin-wasm for wasm32.
# wasm-bindgen reads the `target_features` section to pick its ABI; `strip = true`
# drops it, so keep symbols stripped only as far as debug info.
export CARGO_PROFILE_WASM_RELEASE_STRIP=debuginfo
cd "$ROOT"
if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
  say "building with rustup's $TARGET target"
  TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
  CARGO_TARGET_DIR="$TARGET_DIR" cargo build --profile "$PROFILE" --target "$TARGET" -p plugin-wasm
else
  # No prebuilt wasm32 std (rustup can't download it here): Debian's rustc-web
  # builds std from source. Its own target dir keeps the two toolchains from
  # invalidating each other's artifacts in target/.
  [[ -x /usr/bin/rustc && -x /usr/bin/cargo ]] \
    || die "no $TARGET target in rustup and no Debian rustc-web/cargo-web (/usr/bin/rustc, /usr/bin/cargo); run scripts/setup.sh"
  [[ -d /usr/lib/rustlib/src/rust/library ]] \
    || die "Debian route needs the std source (package rust-web-src); run scripts/setup.sh"
  if [[ -z "${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER:-}" ]]; then
    # rust-lld is a symlink to lld-22; without lld-22 fall back to lld-19's wasm-ld.
    if [[ -e /usr/bin/rust-lld ]]; then
      :
    elif [[ -x /usr/lib/llvm-19/bin/wasm-ld ]]; then
      export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-19/bin/wasm-ld
    else
      die "no wasm linker: install lld-22 (for /usr/bin/rust-lld) or lld-19"
    fi
  fi
  say "building with Debian's rustc ($(/usr/bin/rustc --version)) and -Zbuild-std"
  TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/wasm}"
  # Reference types off (std is built from source here, so all of it agrees):
  # binaryen before 116 (Debian 12 ships 108) corrupts the externref table
  # wasm-bindgen builds with them. rustup's prebuilt std has them on, so that
  # route keeps them; wasm-opt runs before wasm-bindgen (below), so neither
  # route meets that bug.
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-} -Ctarget-feature=-reference-types" \
  RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$TARGET_DIR" \
    /usr/bin/cargo build --profile "$PROFILE" --target "$TARGET" \
    -Zbuild-std=std,panic_abort -p plugin-wasm
fi
RAW_WASM="$TARGET_DIR/$TARGET/$PROFILE/plugin_wasm.wasm"
[[ -f "$RAW_WASM" ]] || die "cargo did not produce $RAW_WASM"

# --- wasm-opt, before wasm-bindgen. Debian 12's binaryen (108) rewrites the
# export of wasm-bindgen's externref table to point at the funcref table (even
# with --enable-reference-types, even at -O0), so a module optimised after
# wasm-bindgen fails to load. Optimising rustc's output first and letting
# wasm-bindgen add its table afterwards avoids the bug with any binaryen.
# The features are those rustc emits by default for wasm32 (older binaryen must
# be told); --all-features would also allow ones the module does not use.
WASM_OPT_FEATURES=(--enable-reference-types --enable-bulk-memory --enable-nontrapping-float-to-int
  --enable-sign-ext --enable-mutable-globals --enable-multivalue)
BINDGEN_INPUT="$RAW_WASM"
OPT_DIR="$TARGET_DIR/wasm-opt"
if command -v wasm-opt >/dev/null 2>&1; then
  rm -rf "$OPT_DIR"
  mkdir -p "$OPT_DIR"
  # Same file name as the input: wasm-bindgen names its output after it.
  if wasm-opt -Oz "${WASM_OPT_FEATURES[@]}" -o "$OPT_DIR/plugin_wasm.wasm" "$RAW_WASM" 2>"$OPT_DIR/wasm-opt.log"; then
    BINDGEN_INPUT="$OPT_DIR/plugin_wasm.wasm"
  else
    say "warning: wasm-opt failed ($(head -n 1 "$OPT_DIR/wasm-opt.log")); shipping the unoptimized wasm"
  fi
else
  say "wasm-opt not found (package binaryen); shipping the unoptimized wasm"
fi

# Loads the module in node and calls two exports. Node's stack trace goes to a
# log beside dist/; a failure is reported by its first error line only.
loads_in_node() {
  node -e '
    const t = require(process.argv[1]);
    const c = t.categories();
    if (!Array.isArray(c) || c.length === 0 || typeof t.fingerprint() !== "string") process.exit(1);
  ' "$DIST/plugin_wasm.js" 2>"$DIST.load-error.log"
}
load_error() { grep -m 1 -E 'Error|error' "$DIST.load-error.log" || echo "exports missing or wrong"; }

# --- JS glue + wasm into plugin-js/dist (cleared first so nothing stale ships).
bindgen() {
  rm -rf "$DIST"
  mkdir -p "$DIST"
  "$WASM_BINDGEN" --target nodejs --no-typescript --out-dir "$DIST" "$1"
  [[ -f "$DIST/plugin_wasm_bg.wasm" && -f "$DIST/plugin_wasm.js" ]] || die "wasm-bindgen did not write $DIST/plugin_wasm.js and plugin_wasm_bg.wasm"
}
bindgen "$BINDGEN_INPUT"
WASM="$DIST/plugin_wasm_bg.wasm"
if ! loads_in_node; then
  [[ "$BINDGEN_INPUT" != "$RAW_WASM" ]] || die "the wasm-bindgen output does not load in node: $(load_error)"
  say "warning: the optimized module does not load in node ($(load_error)); shipping the unoptimized wasm"
  bindgen "$RAW_WASM"
  loads_in_node || die "the wasm-bindgen output does not load in node: $(load_error)"
fi
rm -f "$DIST.load-error.log"
say "wasm: $(stat -c %s "$RAW_WASM") bytes from rustc, $(stat -c %s "$WASM") bytes shipped"

# --- Pack.
cd "$PLUGIN_JS"
rm -f ./*.tgz
TARBALL_NAME="$(npm pack --silent | tail -n 1)"
TARBALL="$PLUGIN_JS/$TARBALL_NAME"
[[ -f "$TARBALL" ]] || die "npm pack did not produce $TARBALL"
tar -tzf "$TARBALL" | grep -qx 'package/dist/plugin_wasm_bg.wasm' \
  || die "$TARBALL lacks dist/plugin_wasm_bg.wasm: check the files field of plugin-js/package.json"

echo "tarball: $TARBALL"
echo "tarball_bytes: $(stat -c %s "$TARBALL")"
echo "wasm_bytes: $(stat -c %s "$WASM")"
