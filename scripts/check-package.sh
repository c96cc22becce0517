#!/usr/bin/env bash
# The crates as crates.io would take them (issue 17 item 8), cheaply (no build):
#   1. rust-version: each publishable crate's `rust-version` is at least the highest
#      `rust-version` that its dependencies declare in Cargo.lock (normal and build
#      dependencies, through the whole graph); the script prints which crate sets the floor.
#      (Nothing here builds on that exact toolchain: only the current stable and nightly are
#      installed. `cargo clippy`'s incompatible_msrv lint, denied in CI, flags standard-library
#      calls newer than it in the workspace's own code.)
#   2. every publishable crate (publish not false) has a description and a licence, no
#      placeholder repository URL, and [package.metadata.docs.rs];
#   3. `cargo package --no-verify` of every publishable crate passes: path dependencies carry
#      versions, the file lists build, nothing dirty is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
meta=$(mktemp)
trap 'rm -f "$meta"' EXIT
cargo metadata --format-version 1 --locked >"$meta"
publishable=$(python3 - "$meta" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
ws = set(m["workspace_members"])
pkgs = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
def ver(v):
    return tuple(int(x) for x in v.split("."))
pub = [pkgs[i] for i in sorted(ws) if pkgs[i]["publish"] != []]
problems = []
# Per publishable crate: the highest rust-version its normal and build dependencies declare
# (the workspace's own crates included), through the resolve graph, against its own.
def closure(root):
    seen, todo = set(), [root]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        for d in nodes[i]["deps"]:
            if any(k["kind"] in (None, "build") for k in d["dep_kinds"]):
                todo.append(d["pkg"])
    return seen
fmt = lambda v: ".".join(map(str, v))
for p in pub:
    if not p.get("rust_version"):
        problems.append(f"{p['name']}: no rust-version")
        continue
    declared = ver(p["rust_version"])
    need = max(((ver(pkgs[i]["rust_version"]), pkgs[i]["name"], pkgs[i]["version"])
                for i in closure(p["id"]) if i != p["id"] and pkgs[i].get("rust_version")),
               default=None)
    if need is None:
        continue
    print(f"{p['name']}: rust-version {fmt(declared)}; its dependencies' highest: "
          f"{need[1]} {need[2]} needs {fmt(need[0])}", file=sys.stderr)
    if need[0][:2] > declared[:2]:
        problems.append(f"{p['name']}: rust-version {fmt(declared)} is below what {need[1]} {need[2]} needs")
for p in pub:
    if not p.get("description"):
        problems.append(f"{p['name']}: no description")
    if not p.get("license"):
        problems.append(f"{p['name']}: no license")
    if "example.invalid" in (p.get("repository") or ""):
        problems.append(f"{p['name']}: placeholder repository {p['repository']}")
    if "rs" not in ((p.get("metadata") or {}).get("docs") or {}):
        problems.append(f"{p['name']}: no [package.metadata.docs.rs]")
if problems:
    sys.exit("check-package:\n  " + "\n  ".join(problems))
print(" ".join(p["name"] for p in pub))
PY
)
echo "publishable: $publishable"
args=()
for c in $publishable; do args+=(-p "$c"); done
# (cargo warns that no crate names a documentation, homepage or repository URL: the project
# has no public home yet, and a placeholder would be worse.)
# --allow-dirty: in CI the earlier steps may leave untracked files in a crate's directory;
# what is packaged is the committed tree plus those, and nothing here publishes.
out=$(cargo package --locked --no-verify --allow-dirty "${args[@]}" 2>&1) || { echo "$out" >&2; exit 1; }
grep -E '^ *(Packaging|Packaged) ' <<<"$out"
echo "cargo package: $(( ${#args[@]} / 2 )) publishable crates packaged"
