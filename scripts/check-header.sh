#!/usr/bin/env bash
# Fails when the committed C header (bindings/c/include/keysmith.h) differs from what the
# pinned cbindgen generates from bindings/c/src; installs that cbindgen when it is missing.
# Regenerate the header after changing the C ABI:
#   cd bindings/c && cbindgen --config cbindgen.toml --crate keysmith-c --output include/keysmith.h
set -euo pipefail
cd "$(dirname "$0")/.."
CBINDGEN_VERSION=0.29.4

cbindgen=cbindgen
if ! "$cbindgen" --version 2>/dev/null | grep -qx "cbindgen $CBINDGEN_VERSION"; then
  cargo install cbindgen --locked --version "$CBINDGEN_VERSION" --root "${CARGO_HOME:-$HOME/.cargo}"
  cbindgen="${CARGO_HOME:-$HOME/.cargo}/bin/cbindgen"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd bindings/c && "$cbindgen" --quiet --config cbindgen.toml --crate keysmith-c --output "$tmp/keysmith.h")
if ! diff -u bindings/c/include/keysmith.h "$tmp/keysmith.h"; then
  echo "bindings/c/include/keysmith.h is stale (above: committed vs generated); regenerate it with" >&2
  echo "  cd bindings/c && cbindgen --config cbindgen.toml --crate keysmith-c --output include/keysmith.h" >&2
  exit 1
fi
echo "C header matches the sources (cbindgen $CBINDGEN_VERSION)"
