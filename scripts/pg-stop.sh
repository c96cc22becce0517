#!/usr/bin/env bash
# pg-stop.sh - stop the private PostgreSQL cluster started by scripts/pg-start.sh.
# Keeps the data (remove <repo>/target/pg to start afresh). Safe when nothing runs.
# `scripts/pg-stop.sh --bench` stops the bench-mode cluster (<repo>/target/pg-bench).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --bench ]; then
  dir=${KEYSMITH_PG_DIR:-$repo/target/pg-bench}
else
  dir=${KEYSMITH_PG_DIR:-$repo/target/pg}
fi
data=$dir/data
[ -s "$data/PG_VERSION" ] || { echo "pg-stop: no cluster in $data" >&2; exit 0; }
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r | head -1)
[ -n "$bindir" ] || { echo "pg-stop: postgresql not installed" >&2; exit 0; }
if runuser -u postgres -- "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -m fast -w stop >/dev/null
  echo "pg-stop: stopped" >&2
else
  echo "pg-stop: not running" >&2
fi
