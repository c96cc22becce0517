#!/usr/bin/env bash
# The repository stands on its own: no tracked file refers to a path outside it (a
# specification, review or workplace directory beside the clone that someone who clones the
# repository does not have), code comments included. What users need of the product's
# specification is in docs/lifecycle.md.
#
# Fails on: a relative path into a sibling "shared" directory, the names of the design
# documents that live outside the repository, and absolute paths under the workplace root.
# One exception: .ci/run describes the CI machine, which keeps a RustSec advisory-db
# snapshot beside the clone (scripts/supply-chain.sh itself takes KEYSMITH_ADVISORY_DB).
set -euo pipefail
cd "$(dirname "$0")/.."
self=scripts/check-self-contained.sh
# Built from pieces so that this file does not match itself.
dotdot='\.\./'
patterns=(
  "${dotdot}shared"                                   # a sibling shared/ directory
  '(^|[^[:alnum:]_.-])shared/(spec|reviews|fixtures|hooks|rig|STYLE)'
  '(^|[^[:alnum:]_.{}-])/wo''rk/'                     # the workplace root (not /v1/work/...)
  '(^|[^[:alnum:]_])(SPEC|SPLIT|ENTRA_GRAPH)\.md'      # design documents kept outside
  '(^|[^[:alnum:]_])SPEC section'
)
regex=$(IFS='|'; echo "${patterns[*]}")
hits=$(git ls-files -z | grep -zv -e "^$self\$" | xargs -0 grep -InE "$regex" -- 2>/dev/null \
  | grep -vE '^\.ci/run:[0-9]+:.*advisory-db' || true)
if [ -n "$hits" ]; then
  echo "files refer to paths or documents outside the repository (docs/lifecycle.md holds what users need):" >&2
  echo "$hits" >&2
  exit 1
fi
echo "self-contained: no tracked file refers to a path outside the repository"
