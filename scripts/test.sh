#!/usr/bin/env bash
# The whole test suite: vet, then every package's tests under the race
# detector (storage, consensus and client code are all concurrent, and the
# whole run takes well under a minute on 2 cores). This is the README's test
# command and what .ci/run executes on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet ./..."
go vet ./...

echo "== go test -race ./..."
go test -race -count=1 -timeout 15m ./...
