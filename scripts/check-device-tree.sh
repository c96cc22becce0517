#!/usr/bin/env bash
# Fails when keysmith's device half (crate keysmith-device) links anything it must not:
# the repository's database drivers, the IdP client or an HTTP stack (issue 11; review E1).
# The device half runs on holders' computers and stations: it never holds the Graph
# credential or the database password, and must not carry the code that would use them.
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden='lifecycle|rusqlite|postgres|tokio-postgres|reqwest|hyper|entra-graph|libsqlite3-sys'
tree=$(cargo tree -p keysmith-device -e normal --prefix none --format '{p}' --locked)
found=$(printf '%s\n' "$tree" | awk '{print $1}' | grep -Ex "($forbidden)" | sort -u || true)
if [ -n "$found" ]; then
  echo "keysmith-device's dependency tree has crates the device half must not link:" >&2
  printf '  %s\n' $found >&2
  echo "(cargo tree -p keysmith-device -e normal -i <crate> shows who pulls each in)" >&2
  exit 1
fi
echo "keysmith-device links no database driver, IdP client or HTTP stack ($(printf '%s\n' "$tree" | sort -u | wc -l) crates)"
