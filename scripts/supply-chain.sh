#!/usr/bin/env bash
# Supply chain: `cargo audit` of Cargo.lock (and fuzz/Cargo.lock) against the offline
# RustSec advisory database, with the accepted advisories of .cargo/audit.toml (each with
# its reason). Fails on any advisory not listed there, and on warnings (unmaintained,
# unsound, yanked). Then a self-test: the same audit against a copy of the database with
# one made-up advisory for a crate in the lock must fail, so a silently passing audit
# (no database, nothing read) cannot go unnoticed.
#
# The database: $KEYSMITH_ADVISORY_DB (a copy of the RustSec advisory-db repository), else
# cargo-audit's own default, ${CARGO_HOME:-~/.cargo}/advisory-db. It is read as it is, never
# fetched: CI has no network access to the online database, so .ci/run points
# KEYSMITH_ADVISORY_DB at the snapshot its machine provides (dated in its SNAPSHOT.md).
# cargo-audit is installed at the pinned version when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
AUDIT_VERSION=0.22.2

db="${KEYSMITH_ADVISORY_DB:-${CARGO_HOME:-$HOME/.cargo}/advisory-db}"
if [ ! -d "$db/crates" ]; then
  echo "no advisory database at $db (set KEYSMITH_ADVISORY_DB to a RustSec advisory-db copy)" >&2
  exit 1
fi

if ! cargo audit --version 2>/dev/null | grep -q " $AUDIT_VERSION\$"; then
  # Without binary scanning: only Cargo.lock files are audited.
  cargo install cargo-audit --locked --version "$AUDIT_VERSION" --no-default-features \
    --root "${CARGO_HOME:-$HOME/.cargo}"
fi
cargo audit --version

audit() {
  # --no-fetch: read the given database as it is; --stale: its age is not an error
  # (the snapshot's date is in its SNAPSHOT.md).
  cargo audit --db "$1" --no-fetch --stale --deny warnings --file "$2"
}

for lock in Cargo.lock fuzz/Cargo.lock; do
  echo "== cargo audit $lock"
  audit "$db" "$lock"
done

echo "== self-test: an advisory not in .cargo/audit.toml fails the audit"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$db" "$tmp/db"
chmod -R u+w "$tmp/db"
mkdir -p "$tmp/db/crates/hex"
cat > "$tmp/db/crates/hex/RUSTSEC-9999-0001.md" <<'ADVISORY'
```toml
[advisory]
id = "RUSTSEC-9999-0001"
package = "hex"
date = "2026-01-01"
url = "https://example.invalid/keysmith-self-test"
categories = ["memory-corruption"]

[versions]
patched = []
```

# keysmith supply-chain self-test (not a real advisory)

Made up by scripts/supply-chain.sh to check that an unlisted advisory fails the audit.
ADVISORY
if out=$(audit "$tmp/db" Cargo.lock 2>&1); then
  echo "$out"
  echo "self-test FAILED: cargo audit passed although hex has an unlisted advisory" >&2
  exit 1
fi
if ! grep -q "RUSTSEC-9999-0001" <<<"$out"; then
  echo "$out"
  echo "self-test FAILED: cargo audit failed, but not for the planted advisory" >&2
  exit 1
fi
echo "self-test ok: the unlisted advisory RUSTSEC-9999-0001 failed the audit"
