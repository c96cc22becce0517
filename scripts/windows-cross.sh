#!/usr/bin/env bash
# Windows cross-check (issue 12): every workspace crate type-checked for
# x86_64-pc-windows-gnu with warnings denied, and the Windows-only unit tests of
# fido-transport (NeedsElevation mapping, webauthn.dll request structures, capability
# report) run under wine. No device is needed.
#
# OpenSSL (fido-core feature `trust`, used by lifecycle, the facade and the bindings)
# has no MinGW build in Debian. `cargo check` links nothing, so openssl-sys is pointed
# at the host's OpenSSL headers (same API) and empty archives: the Rust code is checked
# against OpenSSL's API for Windows, no Windows OpenSSL binary is produced. The one
# binary built and run under wine (fido-transport's unit tests) does not use OpenSSL.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
T=x86_64-pc-windows-gnu

rustup target add "$T" || rustup target list --installed | grep -qx "$T"
need=()
for p in gcc-mingw-w64-x86-64 wine libssl-dev; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" </dev/null \
    || { apt-get update </dev/null && apt-get install -y --no-install-recommends "${need[@]}" </dev/null; }
fi

# The check-only OpenSSL shim: headers (with the arch-specific configuration.h) and
# empty static archives.
shim="$PWD/target/windows-openssl"
rm -rf "$shim" && mkdir -p "$shim/include/openssl" "$shim/lib"
cp /usr/include/openssl/*.h "$shim/include/openssl/"
cp /usr/include/"$(gcc -dumpmachine)"/openssl/*.h "$shim/include/openssl/"
printf '!<arch>\n' >"$shim/lib/libssl.a"
printf '!<arch>\n' >"$shim/lib/libcrypto.a"
export X86_64_PC_WINDOWS_GNU_OPENSSL_INCLUDE_DIR="$shim/include"
export X86_64_PC_WINDOWS_GNU_OPENSSL_LIB_DIR="$shim/lib"
export X86_64_PC_WINDOWS_GNU_OPENSSL_STATIC=1
export X86_64_PC_WINDOWS_GNU_OPENSSL_NO_VENDOR=1
# Warnings denied for the Windows target only (host build scripts keep their flags, so
# the Linux builds' cache stays valid).
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS="-D warnings"

echo "--- cargo check --workspace --target $T"
cargo check --workspace --locked --target "$T"

echo "--- Windows-only unit tests of fido-transport under wine"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
export WINEDEBUG=-all
export WINEPREFIX="$PWD/target/wineprefix"
# The test binary builds the dev-dependencies too: bindgen (littlefs2-sys, for the
# trussed interop tests) needs MinGW's C headers.
gccinc=$(ls -d /usr/lib/gcc/x86_64-w64-mingw32/*-win32/include | head -1)
export BINDGEN_EXTRA_CLANG_ARGS_x86_64_pc_windows_gnu="-I$gccinc -I/usr/x86_64-w64-mingw32/include"
# Rust's std takes its randomness from bcryptprimitives.dll (ProcessPrng), which
# Debian's wine 8 lacks: a stand-in backed by BCryptGenRandom, next to the test binary.
deps="target/$T/debug/deps"
mkdir -p "$deps"
x86_64-w64-mingw32-gcc -shared -O2 -o "$deps/bcryptprimitives.dll" \
  scripts/windows/bcryptprimitives.c -lbcrypt
cargo test -p fido-transport --locked --lib --target "$T" -- platform:: elevation::
