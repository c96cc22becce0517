#!/usr/bin/env bash
# Runs every code block of the user guides, docs/{lifecycle,cli,c,python,rust}.md, with what
# the earlier CI steps built (scripts/test-all.sh runs it near its end; nothing is built here
# but the C library's install, which reuses target/debug):
#   - target/debug/keysmith and target/debug/entra-emulator (cargo test --workspace builds them),
#     first on PATH;
#   - the C library, installed by docs/c.md's own install block (scripts/install-c.sh) under a
#     temporary PREFIX that stands for the guide's /opt/keysmith;
#   - the wheel installed into target/wheel-venv (the "pkgpy" step) for the Python blocks.
# The Rust blocks are doctests (docs/rust.md is a doc module of keysmith-examples) and run in
# `cargo test`. How each block is treated: scripts/run-doc-blocks.py.
#
#   scripts/run-doc-blocks.sh [docs/X.md ...]
# Overrides: DOCS_BIN_DIR (the binaries), DOCS_PYTHON (a python with keysmith installed).
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=$(cargo metadata --format-version 1 --no-deps --locked \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin_dir=${DOCS_BIN_DIR:-$target_dir/debug}
for b in keysmith entra-emulator; do
  [ -x "$bin_dir/$b" ] || { echo "run-doc-blocks: no $bin_dir/$b (cargo test --workspace --all-features builds it)" >&2; exit 1; }
done
export DOCS_PYTHON=${DOCS_PYTHON:-$target_dir/wheel-venv/bin/python}
"$DOCS_PYTHON" -c 'import keysmith' 2>/dev/null \
  || { echo "run-doc-blocks: $DOCS_PYTHON cannot import keysmith (scripts/test-all.sh installs the wheel into target/wheel-venv)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DOCS_PREFIX="$work/prefix"
PATH="$bin_dir:$PATH" python3 scripts/run-doc-blocks.py "$@"
