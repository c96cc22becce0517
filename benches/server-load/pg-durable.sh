#!/usr/bin/env bash
# pg-durable.sh - a private PostgreSQL cluster on loopback with fsync=on and
# synchronous_commit=on, for server-load's two-node figures (scripts/pg-start.sh runs its
# test cluster with fsync=off). Run as root. Prints KEYSMITH_PG_URL=... on stdout.
#   benches/server-load/pg-durable.sh start   [DIR]   (default DIR: target/pg-durable)
#   benches/server-load/pg-durable.sh stop    [DIR]
set -euo pipefail
cmd=${1:-start}
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(realpath -m "${2:-$repo/target/pg-durable}")
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r | head -1)
[ -x "$bindir/initdb" ] || { echo "pg-durable: PostgreSQL not installed (scripts/pg-start.sh installs it)" >&2; exit 1; }
as_pg() { runuser -u postgres -- "$@"; }
if [ "$cmd" = stop ]; then
  as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast stop >/dev/null || true
  exit 0
fi
mkdir -p "$dir/run"
chown postgres "$dir" "$dir/run"
p=$dir; while [ "$p" != / ]; do p=$(dirname "$p"); chmod o+x "$p" 2>/dev/null || true; done
if [ ! -s "$dir/data/PG_VERSION" ]; then
  pw=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '%s\n' "$pw" > "$dir/password"; chmod 600 "$dir/password"; chown postgres "$dir/password"
  as_pg "$bindir/initdb" -D "$dir/data" -U keysmith --pwfile="$dir/password" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >"$dir/initdb.log" 2>&1
fi
pw=$(cat "$dir/password")
port=57432
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if as_pg "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
  port=$(sed -n 4p "$dir/data/postmaster.pid" | tr -d ' ')
else
  while listening "$port"; do port=$((port + 1)); done
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -k $dir/run -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on -c synchronous_commit=on" \
    start >/dev/null
fi
as_pg "$bindir/psql" -h "$dir/run" -p "$port" -U keysmith -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'keysmith'" | grep -q 1 \
  || as_pg "$bindir/createdb" -h "$dir/run" -p "$port" -U keysmith keysmith
echo "KEYSMITH_PG_URL=postgresql://keysmith:$pw@127.0.0.1:$port/keysmith"
