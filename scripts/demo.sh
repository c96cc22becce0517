#!/usr/bin/env bash
# The README's main command: `keysmith demo` on a fresh Debian machine (as root).
# Starts the Entra emulator (real HTTP on loopback) and the software authenticator,
# uses an embedded SQLite file, and walks central issuance -> activation -> sign-in ->
# inactivate -> reissue -> revoke (incl. a forced deletion that fails and cancels),
# printing each step and the final repository and IdP state.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo (rustup stable) is required"; exit 1; }
# The pcsc crate links libpcsclite and finds it with pkg-config.
need=()
for p in libpcsclite-dev pkg-config gcc; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" </dev/null \
    || { apt-get update </dev/null && apt-get install -y --no-install-recommends "${need[@]}" </dev/null; }
fi
exec cargo run --locked -p keysmith-cli --features demo -- demo "$@"
