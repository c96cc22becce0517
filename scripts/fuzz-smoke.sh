#!/usr/bin/env bash
# Runs every cargo-fuzz target briefly (nightly toolchain). FUZZ_SECONDS per target.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-10}
if [ ! -f fuzz/Cargo.toml ]; then echo "no fuzz workspace yet"; exit 0; fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
for t in $(cd fuzz && cargo +nightly fuzz list); do
  echo "--- fuzz $t (${secs}s)"
  mkdir -p "fuzz/corpus/$t"
  seeds=(); [ -d "fuzz/seeds/$t" ] && seeds=("seeds/$t")
  log="fuzz/target/smoke-$t.log"; mkdir -p fuzz/target
  if (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" "${seeds[@]}" -- -max_total_time="$secs" -rss_limit_mb=2048) >"$log" 2>&1; then
    grep -E '^(#[0-9]+: *DONE|Done [0-9]+ runs)' "$log" | tail -1 || tail -1 "$log"
  else
    tail -60 "$log"; echo "fuzz target $t FAILED"; exit 1
  fi
done
