#!/usr/bin/env bash
# The whole test suite: vet, then every package's tests under the race
# detector (storage, consensus and client code are all concurrent). It takes
# about two minutes on a 2-core machine. gotestsum (a tool dependency in
# go.mod) prints one line per package and, at the end, every skipped test
# with its reason, so a test that could not run here (e.g. the compose test
# without podman) is visible. This is the README's test command and what
# .ci/run executes on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet ./..."
go vet ./...

echo "== go test -race ./... (via gotestsum)"
go tool gotestsum --format pkgname --format-hide-empty-pkg -- -race -count=1 -timeout 15m ./...
