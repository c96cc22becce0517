#!/usr/bin/env bash
# The README's main command. Until `keysmith demo` (lifecycle issue) exists, it shows the
# working protocol core: every recorded real-authenticator exchange decoded and verified,
# then the decode/verification benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo (rustup stable) is required"; exit 1; }
cargo test -p fido-core --test api fixtures -- --test-threads=1
cargo bench -p fido-core --bench decode
