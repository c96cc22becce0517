#!/usr/bin/env bash
# Every benchmark figure of docs/benchmarks.md, in one run (issue 18: "one command prints
# every figure as a table"). Never run by CI (CI only compiles the benchmarks); run it by
# hand on a machine that is otherwise idle, since wall-time p99s measure the machine too.
#
#   scripts/bench-all.sh [--quick] [--only sig|graph|store|load] [OUT]
#
# Builds the release benchmarks once, starts the durable PostgreSQL bench cluster
# (scripts/pg-start.sh --bench: fsync=on, synchronous_commit=on, shared_buffers=1GB), then
# runs, in turn:
#   sig-bench                 signature verification vs libfido2 (when libfido2-dev is installed)
#   graph-bench all           bulk jobs vs the throttle bound, 429s, Graph requests per key
#   graph_reads (lifecycle)   the engine's Graph requests per issued and registered key
#   store-bench all           repository at 10k/100k/1M keys, both stores
#   server-load all           the split server under load (1 node SQLite, 1 and 2 nodes PostgreSQL), RSS
# and prints, at the end, one line per benchmark with its exit status (graph-bench and
# store-bench exit 1 when one of their targets is missed; sig-bench and server-load print
# their targets beside their figures). Everything printed also goes to OUT (default
# target/bench-all/<UTC time>.md). `--quick` runs smaller sizes (store 10k/100k, 2,000 rows,
# 2,000 sessions): for trying the script, not for docs/benchmarks.md. `--only` runs one of
# the four (it may be given more than once).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

quick=0
out=
only=
while [ $# -gt 0 ]; do
  a=$1; shift
  case "$a" in
    --quick) quick=1 ;;
    --only)
      case "${1:-}" in
        sig|graph|store|load) only="$only $1"; shift ;;
        *) printf 'bench-all: --only takes sig, graph, store or load\n' >&2; exit 2 ;;
      esac ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) printf 'bench-all: unknown option %s\n' "$a" >&2; exit 2 ;;
    *) out=$a ;;
  esac
done
mkdir -p target/bench-all
out=${out:-target/bench-all/$(date -u +%Y%m%dT%H%M%SZ).md}

exec > >(tee "$out") 2>&1

echo "# keysmith benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "- machine: $(nproc) logical CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "- rustc: $(rustc --version)"
echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

echo "## Build (release)"
wants() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }
pkgs=()
wants sig && pkgs+=(-p sig-bench)
wants store && pkgs+=(-p store-bench)
wants load && pkgs+=(-p server-load)
if [ ${#pkgs[@]} -gt 0 ]; then cargo build --release --locked "${pkgs[@]}" || exit 2; fi
# Its own command: `--bin` would narrow the build above to that one binary.
if wants load; then cargo build --release --locked -p keysmith-cli --bin keysmith || exit 2; fi
if wants graph; then
  cargo build --release --locked -p entra-graph --features emulator --bin graph-bench || exit 2
fi

echo "## PostgreSQL (durable bench cluster)"
scripts/pg-start.sh --bench || exit 2
# shellcheck disable=SC1091
. target/pg-bench/env
export KEYSMITH_PG_URL

declare -a names=() codes=()
# run KEY NAME COMMAND...: runs COMMAND unless --only leaves KEY out.
run() {
  local key=$1 name=$2; shift 2
  wants "$key" || return 0
  echo
  echo "## $name"
  echo
  echo "\`$*\` (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  "$@"
  local rc=$?
  names+=("$name"); codes+=("$rc")
}

if [ "$quick" = 1 ]; then
  store_sizes=(--sizes 10000,100000)
  load_opts=(--rows 2000 --sessions 2000)
else
  store_sizes=()
  load_opts=()
fi

run sig "Signature verification vs libfido2" target/release/sig-bench
run graph "Graph throttle bound and requests per key" target/release/graph-bench all
# The engine's own requests per issued and registered key (a test that asserts the counts
# and prints them: counts, not timings, so the dev profile serves).
run graph "Graph requests per issued and registered key, through the engine" \
  cargo test --locked -p lifecycle --all-features --test api -q -- graph_reads::a_bulk_issue --nocapture
run store "Repository at scale" target/release/store-bench all "${store_sizes[@]}"
# The server-load runs keep their files on tmpfs when there is one, so that the disk's
# fdatasync does not stand in for the server's CPU (the figures say which).
if [ -z "${SERVER_LOAD_DIR:-}" ] && [ -d /dev/shm ]; then
  SERVER_LOAD_DIR=$(mktemp -d /dev/shm/keysmith-bench.XXXXXX)
  export SERVER_LOAD_DIR
  trap 'rm -rf "$SERVER_LOAD_DIR"' EXIT
fi
run load "Server half under load, and RSS" env KEYSMITH_BIN="$repo/target/release/keysmith" \
  target/release/server-load all "${load_opts[@]}"

echo
echo "## Summary (exit status 1: graph-bench or store-bench missed a target; 2 or more: did not run)"
echo
echo "| benchmark | exit status |"
echo "|---|---|"
worst=0
for i in "${!names[@]}"; do
  echo "| ${names[$i]} | ${codes[$i]} |"
  [ "${codes[$i]}" -gt "$worst" ] && worst=${codes[$i]}
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); written to $out"
exit "$worst"
