#!/usr/bin/env bash
# Builds and runs every example in examples/ (Rust, C, Python) against the Entra
# emulator and a software key. The Python one needs the venv scripts/test-all.sh makes
# (target/pyvenv, with the keysmith wheel installed); without it the Python example is skipped
# with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
work="$(mktemp -d)"
emu_pid=""
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "== rust: examples/rust/issue_and_activate.rs"
cargo run --locked --quiet -p keysmith-examples --example issue_and_activate

echo "== c: examples/c/issue_and_activate.c"
cargo build --locked --quiet -p keysmith-c -p entra-graph --features entra-graph/emulator
gcc -Wall -Wextra -Werror -o "$work/issue_and_activate" examples/c/issue_and_activate.c \
  -I bindings/c/include -L target/debug -lkeysmith -Wl,-rpath,"$root/target/debug"

# The emulator as a child: its first stdout line is its connection JSON.
coproc EMU { exec target/debug/entra-emulator --listen 127.0.0.1:0 </dev/null; }
emu_pid=$EMU_PID
read -r emu_json <&"${EMU[0]}"
config() { # config NAME: the session configuration JSON for one example's repository
  EMU_JSON="$emu_json" DB="$work/$1.db" TEMPLATE_FILE="$root/examples/templates/standard.toml" \
  python3 -c '
import json, os
e = json.loads(os.environ["EMU_JSON"])
print(json.dumps({
    "repository": {"sqlite": os.environ["DB"]},
    "pin_key": "5a" * 32,
    "station": "example",
    "idp": [{"name": "contoso-entra", "tenant": e["tenant_id"], "client_id": e["client_id"],
             "client_secret": e["client_secret"], "graph_api_version": "beta",
             "login_base": e["base_url"], "graph_base": e["base_url"]}],
    "templates": [open(os.environ["TEMPLATE_FILE"]).read()],
    "allow_software_keys": True,
}))'
}
"$work/issue_and_activate" "$(config c)" "softkey:$work/c-key.json"

echo "== python: examples/python/issue_and_activate.py"
venv="$root/target/pyvenv"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import keysmith' 2>/dev/null; then
  "$venv/bin/python" examples/python/issue_and_activate.py "$(config py)" "softkey:$work/py-key.json"
else
  echo "SKIPPED: no target/pyvenv with keysmith (scripts/test-all.sh makes it and installs the wheel)"
fi
echo "== every example ran"
