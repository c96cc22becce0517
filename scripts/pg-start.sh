#!/usr/bin/env bash
# pg-start.sh - a private PostgreSQL cluster on loopback for keysmith's store tests.
# Run as root, no stdin needed; safe to run again (idempotent: a running cluster is reused).
#
# Two modes:
#   scripts/pg-start.sh           TEST mode: fsync=off. Fast and NOT
#                                 durable (a crash of the machine can lose or corrupt the
#                                 cluster): for the store tests only, never for figures.
#   scripts/pg-start.sh --bench   BENCH mode: fsync=on, synchronous_commit=on,
#                                 full_page_writes=on (PostgreSQL's durable defaults), its own
#                                 state folder <repo>/target/pg-bench; what store-bench needs
#                                 (it refuses a non-durable server unless told otherwise).
#                                 shared_buffers=1GB (KEYSMITH_PG_SHARED_BUFFERS) so the 1 M-key
#                                 data set (about 835 MB) fits PostgreSQL's own cache, as a
#                                 server sized for its data would be (the default is 128MB).
#
# Settings (environment):
#   KEYSMITH_PG_DIR   state folder (default: <repo>/target/pg, bench mode <repo>/target/pg-bench):
#                     data/, run/, log, env
#   KEYSMITH_PG_PORT  first port to try (default 55432, bench mode 55532; the next free one is taken)
#   KEYSMITH_PG_SHARED_BUFFERS  bench mode only: shared_buffers (default 1GB)
#
# Writes $KEYSMITH_PG_DIR/env (shell syntax):
#   KEYSMITH_PG_URL=postgresql://keysmith:<pw>@127.0.0.1:<port>/keysmith
# The store tests read KEYSMITH_PG_URL from the environment or, failing that, this file.
# Stop with scripts/pg-stop.sh.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
mode=test
case "${1:-}" in
  --bench) mode=bench ;;
  "") ;;
  *) printf 'pg-start: error: unknown argument %s (only --bench)\n' "$1" >&2; exit 2 ;;
esac
if [ "$mode" = bench ]; then
  dir=${KEYSMITH_PG_DIR:-$repo/target/pg-bench}
  port=${KEYSMITH_PG_PORT:-55532}
  # Durable: every commit waits for its WAL to reach the disk.
  durability="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
  # Sized for the data: the 1 M-key store-bench set is about 835 MB; with the default
  # 128MB most lookups would read from the OS page cache instead of PostgreSQL's own.
  shared_buffers=${KEYSMITH_PG_SHARED_BUFFERS:-1GB}
  durability="$durability -c shared_buffers=$shared_buffers"
else
  dir=${KEYSMITH_PG_DIR:-$repo/target/pg}
  port=${KEYSMITH_PG_PORT:-55432}
  # A throw-away test cluster: fsync=off trades crash safety of the cluster for speed.
  durability="-c fsync=off"
fi
say() { printf 'pg-start: %s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (installs packages, runs postgres as its own user)"

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

if ! bindir=$(find_bindir); then
  say "installing postgresql with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  bindir=$(find_bindir) || fail "postgresql installed but initdb not found under /usr/lib/postgresql"
fi

# postgres refuses to run as root: the cluster belongs to the 'postgres' user (the
# package creates it), or to a dedicated one if it is missing. The PostgreSQL TLS test
# (lifecycle/tests/api/store/tls.rs) starts its own ssl=on server with these binaries as
# that same user (runuser), so this script is what makes it runnable as root in CI.
owner=postgres
id "$owner" >/dev/null 2>&1 || { useradd --system --no-create-home --shell /usr/sbin/nologin "$owner"; }
as_owner() { runuser -u "$owner" -- "$@"; }

mkdir -p "$dir"
data=$dir/data
run=$dir/run
mkdir -p "$run"
chown "$owner" "$dir" "$run"
# The owner must be able to reach the folder: add the search (x) bit on its parents.
p=$dir
while [ "$p" != / ]; do
  p=$(dirname "$p")
  chmod o+x "$p" 2>/dev/null || true
done

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ ! -s "$data/PG_VERSION" ]; then
  say "initdb in $data"
  rm -rf "$data"
  pw=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '%s\n' "$pw" > "$dir/password"
  chmod 600 "$dir/password"
  chown "$owner" "$dir/password"
  as_owner "$bindir/initdb" -D "$data" -U keysmith --pwfile="$dir/password" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; fail "initdb failed"; }
fi
pw=$(cat "$dir/password")

if as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  port=$(sed -n 4p "$data/postmaster.pid" | tr -d ' ')
  say "already running on 127.0.0.1:$port"
  # A reused cluster keeps the settings it was started with: refuse the wrong mode.
  fsync=$(as_owner "$bindir/psql" -h "$run" -p "$port" -U keysmith -d postgres -tAc "SHOW fsync" || true)
  want=off; [ "$mode" = bench ] && want=on
  [ "$fsync" = "$want" ] || fail "the cluster in $dir runs with fsync=$fsync, $mode mode needs fsync=$want: stop it (scripts/pg-stop.sh) or use another KEYSMITH_PG_DIR"
  if [ "$mode" = bench ]; then
    sb=$(as_owner "$bindir/psql" -h "$run" -p "$port" -U keysmith -d postgres -tAc "SHOW shared_buffers" || true)
    [ "$sb" = "$shared_buffers" ] || say "warning: the running bench cluster has shared_buffers=$sb, not $shared_buffers (restart it with scripts/pg-stop.sh --bench to apply)"
  fi
else
  while listening "$port"; do port=$((port + 1)); done
  say "starting on 127.0.0.1:$port ($mode mode: $durability)"
  as_owner "$bindir/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -k $run -c listen_addresses=127.0.0.1 -c max_connections=100 $durability" start >/dev/null \
    || { tail -20 "$dir/postgres.log" >&2; fail "postgres did not start"; }
fi

# The database (the superuser role 'keysmith' was made by initdb).
if ! as_owner "$bindir/psql" -h "$run" -p "$port" -U keysmith -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'keysmith'" | grep -q 1; then
  as_owner "$bindir/createdb" -h "$run" -p "$port" -U keysmith keysmith
fi

url="postgresql://keysmith:$pw@127.0.0.1:$port/keysmith"
printf 'KEYSMITH_PG_URL=%s\n' "$url" > "$dir/env"
chmod 644 "$dir/env"
say "ready: $dir/env"
echo "KEYSMITH_PG_URL=$url"
