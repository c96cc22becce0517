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
# ---- BEGIN sig-bench libfido2 (issue 18, helper sig) ----
# libfido2-dev: sig-bench's build script compiles its libfido2 peer harness against it, so
# the clippy/check steps build the harness too (the benchmark itself never runs in CI).
dpkg -s libfido2-dev >/dev/null 2>&1 || need+=(libfido2-dev)
# ---- END sig-bench libfido2 ----
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
# ---- BEGIN fido-core pure-Rust signature backend (issue 18, helper sig) ----
# fido-core without ring (no C toolchain needed): the RustCrypto backend alone still builds.
cargo check -p fido-core --no-default-features --features verify-rustcrypto --locked --quiet
# ---- END fido-core pure-Rust signature backend ----

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

# ---- issue 17 item 3 (helper "pkgpy"): the Python package as users install it ----------
log "Python bindings: abi3 wheel + sdist (maturin), pip install into a fresh venv, pytest there"
# One build of the extension: a wheel from the dev profile (CI does no release build), and
# the sdist. The wheel is installed into a brand-new venv (target/wheel-venv, made anew each
# run, with only pytest and its pinned dependencies besides) where the tests import the
# installed package, never the source tree; the same wheel goes into the tools venv for
# stubtest, mypy, the examples, the fault campaign and the interop tests below.
dist="$PWD/target/python-dist"
rm -rf "$dist"
# ---- BEGIN manylinux tag (issue 17, helper eco) ----
# A manylinux_2_34 wheel (the PyPI tag): maturin checks the glibc symbol versions itself
# (Debian 12 builds need nothing newer than GLIBC_2.34) and `--auditwheel repair` copies
# the one non-manylinux library the extension links, OpenSSL (fido-core's MDS3 chain
# check), into keysmith.libs/ with patchelf (installed by .ci/run), as auditwheel does.
# scripts/check-python-dist.sh checks the tag and every NEEDED library offline.
(cd bindings/python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
  maturin build --locked --profile dev --compatibility manylinux_2_34 --auditwheel repair \
    --interpreter "$venv/bin/python" --out "$dist" \
  && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin sdist --out "$dist")
# ---- END manylinux tag ----
scripts/check-python-dist.sh "$dist"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
  --force-reinstall "$dist"/keysmith-*.whl
wvenv="$PWD/target/wheel-venv"
rm -rf "$wvenv"
python3 -m venv "$wvenv"
"$wvenv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  --only-binary :all: -r .ci/requirements-wheel-test.txt
"$wvenv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$dist"/keysmith-*.whl
"$wvenv/bin/python" -m pip show keysmith
# Installed, typed, and imported from the venv (not from bindings/python/python).
(cd "$wvenv" && bin/python - <<'PY'
import importlib.metadata as md, pathlib, sys, keysmith
site = pathlib.Path(sys.prefix).resolve()
where = pathlib.Path(keysmith.__file__).resolve()
assert site in where.parents, f"keysmith imported from {where}, not the venv {site}"
files = {str(f) for f in md.files("keysmith") or []}
assert "keysmith/py.typed" in files and (where.parent / "py.typed").is_file(), "py.typed missing"
assert "keysmith/_native.pyi" in files, "stubs missing"
assert any(f.endswith("LICENSE-APACHE") for f in files) and any(f.endswith("LICENSE-MIT") for f in files), files
meta = md.metadata("keysmith")
assert meta["Version"] == keysmith.__version__, (meta["Version"], keysmith.__version__)
assert meta["License-Expression"] == "Apache-2.0 OR MIT" and meta["Requires-Python"] == ">=3.11"
print("keysmith", keysmith.__version__, "installed at", where.parent)
PY
)
# bindings/python/tests/conftest.py fails the run if keysmith is not the venv's.
KEYSMITH_EMULATOR_BIN="$PWD/target/debug/entra-emulator" KEYSMITH_EXPECT_INSTALLED="$wvenv" \
  "$wvenv/bin/python" -m pytest -q -p no:cacheprovider bindings/python/tests tests/parity
# The stubs (keysmith/_native.pyi and the package's annotations) against the installed
# module, then the package and its tests type-checked strictly.
(cd bindings/python && "$venv/bin/python" -m mypy.stubtest keysmith \
  && "$venv/bin/python" -m mypy --strict python/keysmith tests)
# ---- end of the "pkgpy" block -----------------------------------------------------------

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

# ---- BEGIN keysmith CLI install check (issue 17 item 5, helper "cli") -------------------
# `cargo install --path bindings/cli` builds the package with its own default features,
# which workspace-wide feature unification can hide a missing dependency feature from. A
# real `cargo install --debug` rebuilds about five minutes of crates here (measured 4m47s
# on 2 cores: other features, another num-bigint-dig profile), so CI type-checks exactly
# what it builds (the package alone, its `keysmith` bin, default features; ~50 s) and runs
# the binary the tests built: --version, completions, man page.
log "keysmith CLI: what cargo install --path bindings/cli builds; --version, completions, man"
cargo check --locked --quiet -p keysmith-cli --bin keysmith
target/debug/keysmith --version
target/debug/keysmith completions bash | grep -q '^_keysmith()'
target/debug/keysmith man | grep -q '^\.TH keysmith 1'
# ---- END keysmith CLI install check ------------------------------------------------------
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
# ---- BEGIN docs and packaging (issue 17 items 8 and 9, helper "docs") ---------------------
# The crates as crates.io takes them (no build): rust-version against what Cargo.lock needs,
# descriptions/licences/docs.rs metadata, `cargo package --no-verify` of every publishable
# crate (a few seconds).
log "publishable crates: rust-version vs Cargo.lock, metadata, cargo package --no-verify"
scripts/check-package.sh
# Every code block of the user guides runs, on what the steps above built: the binaries of
# `cargo test --workspace`, the C library (installed by docs/c.md's own block under a
# temporary prefix, from target/debug), the wheel in target/wheel-venv. The Rust guide's
# blocks are doctests of keysmith-examples and ran in `cargo test` above.
log "user guides: the code blocks of docs/{lifecycle,cli,c,python,rust}.md"
scripts/run-doc-blocks.sh
# ---- END docs and packaging ----------------------------------------------------------------
