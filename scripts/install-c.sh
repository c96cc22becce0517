#!/usr/bin/env bash
# Installs keysmith's C library under PREFIX the way libfido2 and rustls-ffi install theirs:
#
#   scripts/install-c.sh PREFIX [--profile dev|release] [--features "nfc ..."]
#
#   PREFIX/lib/libkeysmith.so.MAJOR.MINOR.PATCH   the shared library, SONAME libkeysmith.so.SOVER
#   PREFIX/lib/libkeysmith.so.SOVER -> ...       what the loader looks up (the SONAME)
#   PREFIX/lib/libkeysmith.so -> ...             what `cc -lkeysmith` links against
#   PREFIX/lib/libkeysmith.a                     the static library
#   PREFIX/include/keysmith.h                    the header (KS_VERSION_MAJOR/MINOR/PATCH)
#   PREFIX/lib/pkgconfig/keysmith.pc             `pkg-config --cflags --libs keysmith`
#
# SOVER follows cargo-c's rule for the C ABI version in bindings/c/Cargo.toml: the major
# number from 1.0 on, MAJOR.MINOR before 1.0 (0.3 for 0.3.x), because before 1.0 a minor
# release may rename or remove entry points. The library is built by cargo (dev profile
# unless --profile release) and the SONAME written into the installed copy with patchelf,
# so the copy in target/ (linked by the tests and examples with -L target/debug) stays
# as cargo built it.
#
# Without --features the library has cargo's default features (no NFC: it needs no
# libpcsclite.so.1); `--features nfc` adds PC/SC (and -lpcsclite in keysmith.pc's
# Libs.private).
# Needs: cargo, patchelf, a C toolchain (Debian: apt-get install patchelf gcc pkg-config).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 PREFIX [--profile dev|release] [--features \"nfc ...\"]" >&2; exit 2; }
[ $# -ge 1 ] || usage
prefix=$1; shift
profile=dev
features=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || usage; profile=$2; shift 2 ;;
    --features) [ $# -ge 2 ] || usage; features=$2; shift 2 ;;
    *) usage ;;
  esac
done
case "$profile" in dev) dir=debug ;; release) dir=release ;; *) usage ;; esac
command -v patchelf >/dev/null || { echo "install-c.sh: patchelf is required (apt-get install patchelf)" >&2; exit 1; }

# The version of the C ABI (bindings/c/Cargo.toml, also KS_VERSION_* in the header).
version=$(sed -n 's/^version = "\([0-9.]*\)"$/\1/p' bindings/c/Cargo.toml | head -n1)
[ -n "$version" ] || { echo "install-c.sh: no version in bindings/c/Cargo.toml" >&2; exit 1; }
IFS=. read -r major minor _patch <<<"$version"
if [ "$major" = 0 ]; then sover="$major.$minor"; else sover="$major"; fi

target_dir=$(cargo metadata --format-version 1 --no-deps --locked \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
cargo build --locked --quiet -p keysmith-c --profile "$profile" ${features:+--features "$features"}
built="$target_dir/$dir"

# What a static link needs besides libkeysmith.a: the shared libraries the built library
# was linked against (its NEEDED entries: libssl/libcrypto, libpcsclite with NFC, ...)
# plus what rustc's std needs on linux-gnu.
private=$(readelf -d "$built/libkeysmith.so" | sed -n 's/.*(NEEDED).*\[lib\([^.]*\)\.so.*\]/-l\1/p' \
  | grep -v -e '^-lc$' -e '^-lld-linux' -e '^-lgcc_s$' -e '^-lm$' | tr '\n' ' ')
private="${private}-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"

mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
prefix=$(cd "$prefix" && pwd)
install -m 0755 "$built/libkeysmith.so" "$prefix/lib/libkeysmith.so.$version"
patchelf --set-soname "libkeysmith.so.$sover" "$prefix/lib/libkeysmith.so.$version"
ln -sfn "libkeysmith.so.$version" "$prefix/lib/libkeysmith.so.$sover"
ln -sfn "libkeysmith.so.$sover" "$prefix/lib/libkeysmith.so"
install -m 0644 "$built/libkeysmith.a" "$prefix/lib/libkeysmith.a"
install -m 0644 bindings/c/include/keysmith.h "$prefix/include/keysmith.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" -e "s|@LIBS_PRIVATE@|$private|" \
  bindings/c/pkgconfig/keysmith.pc.in >"$prefix/lib/pkgconfig/keysmith.pc"
echo "installed keysmith $version (SONAME libkeysmith.so.$sover) under $prefix"
