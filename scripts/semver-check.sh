#!/usr/bin/env bash
# cargo-semver-checks on every publishable library crate (issue 17 item 8): compares each
# crate's public Rust API with the baseline commit in scripts/semver-baseline and fails when
# a change needs a bigger version bump than the crate's Cargo.toml gives it. With the
# version unchanged (0.1.0 on both sides) only additions pass: a removal, a renamed field,
# a new required trait item or a changed signature fails ("needs a new minor version", as
# 0.y.z counts y as the major part). Bumping the version (0.1.0 -> 0.2.0) lets a break pass.
#
#   scripts/semver-check.sh                    # every crate against scripts/semver-baseline
#   scripts/semver-check.sh -p fido-core       # one crate (repeatable)
#   scripts/semver-check.sh --baseline-rev REV # another baseline (a tag, a commit)
#   scripts/semver-check.sh --accept           # write HEAD into scripts/semver-baseline
#
# Crates: the workspace members that are published (publish not false) and have a library
# target, as scripts/check-package.sh finds them; binary-only crates (keysmith-cli) and
# publish = false crates (testkit, python module, examples, benches) are skipped. A crate that
# does not exist at the baseline is skipped with a note (nothing to compare).
# Features: every feature the crate declares except `default` and the internal ones listed
# in INTERNAL_FEATURES (fuzzing, fault-injection: test hooks, not API), each side with the
# features its own Cargo.toml declares (a feature added since the baseline is checked on the
# current side only).
#
# Tool: cargo-semver-checks 0.51.x (rustdoc JSON format v57, which rustc 1.95 writes; it sets
# RUSTC_BOOTSTRAP for rustdoc's JSON output itself, so the stable toolchain works). Installed
# with `cargo install cargo-semver-checks --locked --version ~0.51 --debug` (see
# docs/releasing.md for the measured cost). It builds rustdoc JSON for both sides in
# placeholder projects under target/semver-checks (one shared target directory here, so
# dependencies compile once per feature set) and resolves their dependencies afresh, which
# needs the crates.io index (as `cargo update` does).
#
# Exit status: 0 no break; 1 a crate's API broke semver against the baseline; 2 the check
# could not run (tool missing, baseline commit unknown, a build failed).
set -euo pipefail
cd "$(dirname "$0")/.."

baseline_file=scripts/semver-baseline
INTERNAL_FEATURES="fuzzing fault-injection"
want_version="0.51."

rev=""
accept=0
packages=()
while [ $# -gt 0 ]; do
  case "$1" in
    --baseline-rev) rev="${2:?--baseline-rev needs a revision}"; shift 2 ;;
    --baseline-rev=*) rev="${1#*=}"; shift ;;
    -p|--package) packages+=("${2:?-p needs a crate name}"); shift 2 ;;
    --accept) accept=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "semver-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$accept" = 1 ]; then
  head_rev=$(git rev-parse HEAD)
  tmp=$(mktemp)
  grep -E '^[[:space:]]*(#|$)' "$baseline_file" >"$tmp"
  echo "$head_rev" >>"$tmp"
  mv "$tmp" "$baseline_file"
  echo "semver-check: baseline is now HEAD ($head_rev); commit $baseline_file with the CHANGELOG entry"
  exit 0
fi

if [ -z "$rev" ]; then
  rev=$(grep -vE '^[[:space:]]*(#|$)' "$baseline_file" | head -n1 | tr -d '[:space:]')
fi
if ! base_commit=$(git rev-parse --verify --quiet "${rev}^{commit}"); then
  echo "semver-check: baseline revision '$rev' is not in this repository (a shallow clone? fetch it, or pass --baseline-rev)" >&2
  exit 2
fi

if ! tool=$(cargo semver-checks --version 2>/dev/null); then
  echo "semver-check: cargo-semver-checks is not installed:" >&2
  echo "  cargo install cargo-semver-checks --locked --version '~0.51' --debug" >&2
  exit 2
fi
case "$tool" in
  "cargo-semver-checks $want_version"*) ;;
  *) echo "semver-check: warning: $tool; this script is written for ${want_version}x (rustdoc JSON v57)" >&2 ;;
esac

# Crate, manifest directory, current features, baseline features (comma-separated; "-" none).
plan=$(python3 - "$base_commit" "$INTERNAL_FEATURES" "${packages[@]}" <<'PY'
import json, subprocess, sys, tomllib
base, internal, only = sys.argv[1], set(sys.argv[2].split()), set(sys.argv[3:])
m = json.loads(subprocess.run(
    ["cargo", "metadata", "--format-version", "1", "--no-deps", "--locked"],
    check=True, capture_output=True, text=True).stdout)
root = m["workspace_root"] + "/"
known = set()
for p in m["packages"]:
    if p["id"] not in m["workspace_members"] or p["publish"] == []:
        continue
    kinds = {k for t in p["targets"] for k in t["kind"]}
    if not kinds & {"lib", "rlib"}:
        continue
    known.add(p["name"])
    if only and p["name"] not in only:
        continue
    rel = p["manifest_path"][len(root):]
    cur = sorted(f for f in p["features"] if f != "default" and f not in internal)
    shown = subprocess.run(["git", "show", f"{base}:{rel}"], capture_output=True, text=True)
    if shown.returncode != 0:
        print(f"{p['name']}\t{rel.rsplit('/', 1)[0] or '.'}\tNEW\tNEW")
        continue
    old = tomllib.loads(shown.stdout)
    if old.get("package", {}).get("name") != p["name"]:
        print(f"{p['name']}\t{rel.rsplit('/', 1)[0] or '.'}\tNEW\tNEW")
        continue
    was = sorted(f for f in old.get("features", {}) if f != "default" and f not in internal)
    print(f"{p['name']}\t{rel.rsplit('/', 1)[0] or '.'}\t{','.join(cur) or '-'}\t{','.join(was) or '-'}")
missing = only - known
if missing:
    sys.exit(f"semver-check: not a publishable library crate: {', '.join(sorted(missing))}")
PY
) || exit 2

# One target directory for every placeholder project (each crate's baseline and current
# rustdoc): dependencies are compiled once per feature set instead of once per crate.
export CARGO_TARGET_DIR="${SEMVER_CHECK_TARGET_DIR:-$PWD/target/semver-checks-build}"

echo "semver-check: $tool; baseline $base_commit ($rev)"
broke=()
failed=()
checked=0
while IFS=$'\t' read -r name _dir cur was; do
  [ -n "$name" ] || continue
  if [ "$cur" = NEW ]; then
    echo "semver-check: $name: not at the baseline (new crate), nothing to compare"
    continue
  fi
  args=(semver-checks check-release -p "$name" --baseline-rev "$base_commit"
        --only-explicit-features)
  [ "$cur" = - ] || args+=(--current-features "$cur")
  [ "$was" = - ] || args+=(--baseline-features "$was")
  echo "semver-check: $name (features: current ${cur}, baseline ${was})"
  set +e
  cargo "${args[@]}"
  rc=$?
  set -e
  checked=$((checked + 1))
  case $rc in
    0) ;;
    100) broke+=("$name") ;;
    *) failed+=("$name (exit $rc)") ;;
  esac
done <<<"$plan"

if [ ${#failed[@]} -gt 0 ]; then
  echo "semver-check: could not check: ${failed[*]}" >&2
  exit 2
fi
if [ ${#broke[@]} -gt 0 ]; then
  cat >&2 <<EOF
semver-check: public API changes that need a bigger version bump than Cargo.toml gives:
  ${broke[*]}
Either keep the old API (deprecate, add beside it), or bump the crate's version, or (before
the first release) accept the break: write it in CHANGELOG.md under Unreleased and run
scripts/semver-check.sh --accept (docs/releasing.md).
EOF
  exit 1
fi
echo "semver-check: $checked crate(s) checked against $base_commit: no semver break"
