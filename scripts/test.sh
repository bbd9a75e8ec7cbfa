#!/usr/bin/env bash
# The whole test suite: vet, race-checked unit tests for the storage and
# consensus packages, then everything else. This is the README's test command
# and what .ci/run executes on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet"
go vet ./...

race_pkgs=()
for p in raftlog fsm broker; do
  [ -d "$p" ] && race_pkgs+=("./$p/...")
done
if [ ${#race_pkgs[@]} -gt 0 ]; then
  echo "== go test -race ${race_pkgs[*]}"
  go test -race -count=1 -timeout 12m "${race_pkgs[@]}"
fi

echo "== go test ./..."
go test -count=1 -timeout 15m ./...
