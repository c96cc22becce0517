#!/usr/bin/env bash
# Checks the C library as its users get it (issue 17 items 2 and 4):
#   1. scripts/install-c.sh under a temporary PREFIX gives lib/libkeysmith.so.SOVER with that
#      SONAME (readelf -d), the symlinks, lib/libkeysmith.a, include/keysmith.h and
#      lib/pkgconfig/keysmith.pc;
#   2. examples/c/issue_and_activate.c, built with `cc $(pkg-config --cflags --libs keysmith)`
#      against that copy, records the SONAME and runs an issuance + activation on a software
#      key against the Entra emulator; so does a static link through `pkg-config --static`;
#   3. the installed library needs no libpcsclite.so.1 (readelf/ldd), and the issuance also
#      runs with libpcsclite.so.1 made unloadable (a mount namespace, where unshare works);
#   4. every JSON document the C ABI printed while issuing (bindings/c/tests/c/
#      schema_payloads.c) validates against its schema in docs/schemas/;
#   5. the Python extension (target/pyvenv's, and any wheel in target/wheels) needs no
#      libpcsclite.so.1 either.
# Reuses what earlier steps built (target/debug: libkeysmith, entra-emulator); the dev
# profile only. Needs patchelf, pkg-config, gcc, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
emu_pid=""
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "check-c-install: $*" >&2; exit 1; }

prefix="$work/prefix"
scripts/install-c.sh "$prefix"
version=$(sed -n 's/^version = "\([0-9.]*\)"$/\1/p' bindings/c/Cargo.toml | head -n1)
IFS=. read -r major minor _ <<<"$version"
if [ "$major" = 0 ]; then sover="$major.$minor"; else sover="$major"; fi

echo "== the installed files"
for f in "lib/libkeysmith.so.$version" "lib/libkeysmith.so.$sover" lib/libkeysmith.so \
         lib/libkeysmith.a include/keysmith.h lib/pkgconfig/keysmith.pc; do
  [ -e "$prefix/$f" ] || fail "missing $prefix/$f"
  echo "  $f"
done
[ "$(readlink "$prefix/lib/libkeysmith.so.$sover")" = "libkeysmith.so.$version" ] || fail "bad symlink .so.$sover"
[ "$(readlink "$prefix/lib/libkeysmith.so")" = "libkeysmith.so.$sover" ] || fail "bad symlink .so"
soname=$(readelf -d "$prefix/lib/libkeysmith.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libkeysmith.so.$sover" ] || fail "SONAME is '$soname', expected libkeysmith.so.$sover"
echo "  SONAME $soname (readelf -d)"
for m in MAJOR MINOR PATCH; do
  grep -q "^#define KS_VERSION_$m " "$prefix/include/keysmith.h" || fail "no KS_VERSION_$m in keysmith.h"
done

echo "== no libpcsclite.so.1 in the installed library"
if readelf -d "$prefix/lib/libkeysmith.so.$version" | grep -q 'NEEDED.*pcsclite'; then
  fail "libkeysmith.so.$version needs libpcsclite (readelf -d)"
fi
if ldd "$prefix/lib/libkeysmith.so.$version" | grep -q pcsclite; then fail "ldd shows pcsclite"; fi
echo "  readelf -d and ldd show no pcsclite"

echo "== examples/c with pkg-config against the installed copy"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion keysmith)" = "$version" ] || fail "pkg-config --modversion"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -o "$work/issue_and_activate" examples/c/issue_and_activate.c \
  $(pkg-config --cflags --libs keysmith)
readelf -d "$work/issue_and_activate" | grep -q "NEEDED.*\[libkeysmith.so.$sover\]" \
  || fail "the example does not record libkeysmith.so.$sover"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -o "$work/issue_and_activate_static" examples/c/issue_and_activate.c \
  $(pkg-config --cflags keysmith) "$prefix/lib/libkeysmith.a" \
  $(pkg-config --static --libs-only-l keysmith | sed 's/-lkeysmith//')

coproc EMU { exec target/debug/entra-emulator --listen 127.0.0.1:0 </dev/null; }
emu_pid=$EMU_PID
read -r emu_json <&"${EMU[0]}"
config() { # config NAME: a session configuration JSON with its own SQLite repository
  EMU_JSON="$emu_json" DB="$work/$1.db" TEMPLATE_FILE="$root/examples/templates/standard.toml" \
  python3 -c '
import json, os
e = json.loads(os.environ["EMU_JSON"])
print(json.dumps({
    "repository": {"sqlite": os.environ["DB"]},
    "pin_key": "5a" * 32,
    "station": "install-check",
    "idp": [{"name": "contoso-entra", "tenant": e["tenant_id"], "client_id": e["client_id"],
             "client_secret": e["client_secret"], "graph_api_version": "beta",
             "login_base": e["base_url"], "graph_base": e["base_url"]}],
    "templates": [open(os.environ["TEMPLATE_FILE"]).read()],
    "allow_software_keys": True,
}))'
}
LD_LIBRARY_PATH="$prefix/lib" "$work/issue_and_activate" "$(config shared)" "softkey:$work/k1.json"
echo "  shared: issued and activated"
"$work/issue_and_activate_static" "$(config static)" "softkey:$work/k2.json"
echo "  static: issued and activated"

pcsclite=$(ldconfig -p | sed -n 's/.*libpcsclite.so.1 .*=> //p' | head -n1)
if [ -n "$pcsclite" ] && unshare --mount true 2>/dev/null; then
  # libpcsclite.so.1 replaced by an empty file: anything that loads it fails.
  : >"$work/empty"
  unshare --mount sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh \
    "$work/empty" "$(readlink -f "$pcsclite")" \
    env LD_LIBRARY_PATH="$prefix/lib" "$work/issue_and_activate" "$(config hidden)" "softkey:$work/k3.json"
  echo "  shared, libpcsclite.so.1 unloadable: issued and activated"
else
  echo "  (no unshare --mount here or no libpcsclite installed: the readelf/ldd check above stands)"
fi

echo "== an nfc: device in the default (NFC-less) library is a typed error"
if out=$(LD_LIBRARY_PATH="$prefix/lib" "$work/issue_and_activate" "$(config nfc)" "nfc:any reader" 2>&1); then
  fail "nfc: opened in a library without NFC"
fi
grep -q "NFC unavailable.*pcsc" <<<"$out" || fail "nfc: error does not say NFC unavailable / pcsc: $out"
echo "  $(grep -o 'NFC unavailable[^.]*' <<<"$out" | head -n1)"

echo "== the C ABI's JSON documents against docs/schemas/"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -o "$work/schema_payloads" bindings/c/tests/c/schema_payloads.c \
  $(pkg-config --cflags --libs keysmith)
LD_LIBRARY_PATH="$prefix/lib" "$work/schema_payloads" "$(config schemas)" "softkey:$work/k4.json" \
  >"$work/payloads.tsv"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  --only-binary :all: -r .ci/requirements-schemas.txt
"$work/venv/bin/python" scripts/validate-schemas.py --renamed-fields-fail docs/schemas "$work/payloads.tsv"

echo "== the Python extension needs no libpcsclite.so.1"
# What the Python steps above built: the module in target/pyvenv (maturin develop) and
# any wheel in target/python-dist or target/wheels (maturin build); each extension found
# is checked.
exts=()
venv="$root/target/pyvenv"
if [ -x "$venv/bin/python" ] && ext=$("$venv/bin/python" -c '
import importlib.util
for name in ("keysmith._native", "keysmith"):
    spec = importlib.util.find_spec(name)
    if spec and spec.origin and spec.origin.endswith(".so"):
        print(spec.origin); break
else:
    raise SystemExit(1)' 2>/dev/null); then
  exts+=("$ext")
fi
for wheel in target/python-dist/keysmith-*.whl target/wheels/keysmith-*.whl; do
  [ -f "$wheel" ] || continue
  mkdir -p "$work/wheel" && python3 -m zipfile -e "$wheel" "$work/wheel/$(basename "$wheel")"
  while IFS= read -r so; do exts+=("$so"); done < <(find "$work/wheel/$(basename "$wheel")" -name '*.so')
done
if [ ${#exts[@]} -eq 0 ]; then
  [ "${CI:-}" != true ] || fail "CI=true but no Python extension found (target/pyvenv, target/python-dist, target/wheels)"
  echo "  SKIPPED: no Python extension built (target/pyvenv or target/wheels; scripts/test-all.sh makes them)"
fi
for ext in "${exts[@]}"; do
  if readelf -d "$ext" | grep -q 'NEEDED.*pcsclite' || ldd "$ext" | grep -q pcsclite; then
    fail "$ext needs libpcsclite (readelf -d / ldd)"
  fi
  echo "  $ext: readelf -d and ldd show no pcsclite"
done
echo "== C install check passed"
