#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root) and runs every check keysmith has:
# formatting, clippy with warnings denied, all tests, and a smoke run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
log() { printf '\n=== %s ===\n' "$*"; }

log "toolchain"
command -v cargo >/dev/null || { echo "cargo (rustup stable) is required"; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true

log "system packages"
# libclang-dev: the trussed firmware used by the USB HID interop tests builds littlefs2
# through bindgen. gcc builds rusqlite's bundled SQLite and pyscard.
need=()
for p in libclang-dev gcc pkg-config; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
# The sqlite3 tool: the CLI test edits an audit row of the demo database with it.
command -v sqlite3 >/dev/null || need+=(sqlite3)
# The Python bindings are tested in a venv (Debian's python3 needs python3-venv for it).
command -v python3 >/dev/null || need+=(python3 python3-pip)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" </dev/null \
    || { apt-get update </dev/null && apt-get install -y --no-install-recommends "${need[@]}" </dev/null; }
fi

log "the PC/SC rig (pcscd + vpcd)"
# pcsc's build needs libpcsclite-dev + pkg-config; NFC tests need a running pcscd with vpcd.
scripts/pcsc-rig-start.sh
trap 'scripts/pcsc-rig-stop.sh || true; scripts/pg-stop.sh || true' EXIT

log "PostgreSQL on loopback (shared repository tests)"
scripts/pg-start.sh

log "Python tools in a venv, pinned with hashes (.ci/requirements.txt)"
# maturin, pytest, mypy, python-fido2 and pyscard for the bindings' and interop tests:
# every package (dependencies too) at one version with its sha256, into target/pyvenv,
# nothing into the system python. pyscard is built from its sdist (needs gcc and
# libpcsclite-dev, installed above and by the PC/SC rig).
venv="$PWD/target/pyvenv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  --only-binary :all: --no-binary pyscard -r .ci/requirements.txt

log "supply chain: cargo audit against the offline advisory database"
# Fails on any advisory not accepted (with its reason) in .cargo/audit.toml, and
# self-tests that an unlisted one fails.
scripts/supply-chain.sh

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
cargo check --workspace --locked --quiet   # default features build too
scripts/check-header.sh   # the committed C header is the pinned cbindgen's output

log "fido-core stays sans-IO"
if cargo tree -p fido-core -e normal --prefix none --locked | grep -Eiq '^(hidapi|pcsc|reqwest|tokio|hyper|mio|async-std|rusqlite|postgres|socket2) '; then
  echo "fido-core depends on an IO crate:"; cargo tree -p fido-core -e normal --locked; exit 1
fi

log "layout: ARCHITECTURE.md names every crate; no source file over 900 lines"
cargo metadata --format-version 1 --no-deps --locked \
  | python3 -c 'import json,sys; [print(p["name"]) for p in json.load(sys.stdin)["packages"]]' \
  | while read -r crate; do
      grep -q "\`$crate\`" ARCHITECTURE.md || { echo "ARCHITECTURE.md does not name crate $crate"; exit 1; }
    done
long=$(git ls-files '*.rs' | grep -E '(^|/)(src|tests)/' | xargs wc -l | awk '$2 != "total" && $1 > 900')
[ -z "$long" ] || { echo "source files over 900 lines:"; echo "$long"; exit 1; }

log "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

log "cargo test"
cargo test --workspace --all-features --locked
# keysmith-cli without its demo feature: `keysmith demo` refuses with exit 2.
cargo test -p keysmith-cli --locked --test api config::

log "Python bindings: maturin develop + pytest + mypy (stubtest, --strict)"
# The C ABI's test (bindings/c/tests/api.rs) ran above with the cargo tests.
(cd bindings/python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop --locked)
# The emulator binary the cargo tests built (else the tests build it with cargo run).
KEYSMITH_EMULATOR_BIN="$PWD/target/debug/entra-emulator" "$venv/bin/python" -m pytest -q bindings/python/tests tests/parity
# The stubs (keysmith/_native.pyi and the package's annotations) against the built module,
# then the package and its tests type-checked strictly.
(cd bindings/python && "$venv/bin/python" -m mypy.stubtest keysmith \
  && "$venv/bin/python" -m mypy --strict python/keysmith tests)

log "examples (Rust, C, Python)"
scripts/run-examples.sh

log "fault campaign (short form): bad inputs at the CLI, C and Python boundaries"
# The binaries, libkeysmith and the venv built above; prints "N passed, M failed".
scripts/fault-campaign.sh --short

log "interop: python-fido2 against the software authenticator through pcscd + vpcd"
"$venv/bin/python" -m pytest -q tests/interop

log "fuzz smoke"
scripts/fuzz-smoke.sh

# keysmith-agent's Windows named-pipe UI channel is type-checked with warnings denied by
# scripts/windows-cross.sh (run by .ci/run before this script).

# ---- issue 11 item 7 (helper "bind"): the split flow from C, two processes -------------
# The device half is a C program (examples/c/split_device.c over libkeysmith's
# ks_device_half_*); the server half (ServerHalf over SQLite and the Entra emulator) is
# examples/rust/split_server.rs, which starts it and carries the messages over its
# stdin/stdout. The Python halves run in bindings/python/tests/test_split.py above.
log "split from C: examples/c/split_device.c (device half) <-> examples/rust/split_server.rs (server half)"
cargo build --locked --quiet -p keysmith-c
gcc -Wall -Wextra -Werror -o target/debug/split_device examples/c/split_device.c \
  -I bindings/c/include -L target/debug -lkeysmith -Wl,-rpath,"$PWD/target/debug"
cargo run --locked --quiet -p keysmith-examples --example split_server -- target/debug/split_device
# ---- end of the "bind" block ------------------------------------------------------------

# ---- issue 17 items 2 and 4 (helper "pkgc"): features, pcsclite-free artifacts, C install ----
# Feature combinations that must keep compiling (type-check only, cheap): a transport
# crate with the software key alone, the engine with SQLite alone, the facade bare.
log "cargo features: fido-transport softkey-only, lifecycle sqlite-only, facade with none"
cargo check --locked --quiet -p fido-transport --no-default-features --features softkey
cargo check --locked --quiet -p lifecycle --no-default-features --features sqlite
cargo check --locked --quiet -p keysmith-facade --no-default-features
# The C library as its users install it: scripts/install-c.sh under a temporary PREFIX
# (SONAME by readelf -d, symlinks, .a, header with KS_VERSION_*, keysmith.pc);
# examples/c built with `cc $(pkg-config --cflags --libs keysmith)` (and statically)
# issues on the emulator; the library and the Python extension need no libpcsclite.so.1
# (NFC is a feature they leave out by default); every JSON document the C ABI printed
# on the way validates against docs/schemas/. Dev profile, what the steps above built.
log "C library: install under a PREFIX, pkg-config example, no libpcsclite, JSON schemas"
scripts/check-c-install.sh
# ---- end of the "pkgc" block ------------------------------------------------------------
