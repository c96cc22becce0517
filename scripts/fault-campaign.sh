#!/usr/bin/env bash
# The fault campaign (issue 14): bad inputs at the CLI, C and Python boundaries, each
# expected to give a typed error naming what was wrong; prints per boundary and in total
# "N passed, M failed" and exits 1 if any case failed (known defects are counted apart).
#
#   scripts/fault-campaign.sh [--short] [campaign.py options: --boundary cli,c --case ID -v]
#
# Uses what the build already made (it builds nothing when they exist):
#   target/debug/keysmith, target/debug/entra-emulator, target/debug/libkeysmith.so
#   (else: cargo build -p keysmith-cli -p keysmith-c -p entra-graph --features
#   entra-graph/emulator, as scripts/run-examples.sh does) and the venv target/pyvenv with
#   keysmith installed from the wheel (scripts/test-all.sh makes it; without it the
#   Python boundary is skipped with a message, and with CI=true it is a failure).
# The cases: tests/campaign/{cli,c,python}.toml; see docs/fault-campaign.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
target="${CARGO_TARGET_DIR:-$root/target}/debug"
work="$(mktemp -d)"
emu_pid=""
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if [ ! -x "$target/keysmith" ] || [ ! -x "$target/entra-emulator" ] || [ ! -f "$target/libkeysmith.so" ]; then
  cargo build --locked --quiet -p keysmith-cli -p keysmith-c -p entra-graph --features entra-graph/emulator
fi

# The C runner, against the committed header and the dev-profile library.
gcc -Wall -Wextra -Werror -O1 -o "$work/c_runner" tests/campaign/c_runner.c \
  -I bindings/c/include -L "$target" -lkeysmith -Wl,-rpath,"$target"

boundaries="cli,c,python"
python="${KEYSMITH_CAMPAIGN_PYTHON:-$root/target/pyvenv/bin/python}"
if ! { [ -x "$python" ] && "$python" -c 'import keysmith' 2>/dev/null; }; then
  if [ "${CI:-}" = "true" ]; then
    echo "fault campaign: no target/pyvenv with keysmith (the wheel) under CI"; exit 1
  fi
  echo "fault campaign: Python boundary SKIPPED: no target/pyvenv with keysmith (scripts/test-all.sh makes it)"
  boundaries="cli,c"
fi

# The emulator as a child: its first stdout line is its connection JSON.
coproc EMU { exec "$target/entra-emulator" --listen 127.0.0.1:0 </dev/null; }
emu_pid=$EMU_PID
read -r emu_json <&"${EMU[0]}"

args=()
for a in "$@"; do args+=("$a"); done
case " ${args[*]:-} " in *" --boundary "*) ;; *) args+=(--boundary "$boundaries") ;; esac
python3 tests/campaign/campaign.py --work "$work" --emulator-json "$emu_json" \
  --keysmith "$target/keysmith" --c-runner "$work/c_runner" --python "$python" \
  "${args[@]}" </dev/null
