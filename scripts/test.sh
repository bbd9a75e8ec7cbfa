#!/usr/bin/env bash
# The whole test suite: checks, then every package's tests under the race
# detector (storage, consensus and client code are all concurrent), then a
# short fuzzing pass. On a 2-core machine the race run takes about ten
# minutes (the cross-process e2e package six of them), the fuzzing pass
# two to four, e2e/rocketmq one and a half, plus a one-off five or six
# minutes to build golangci-lint and the race binaries on a cold cache. The checks, each failing the run:
#   - go vet;
#   - go mod tidy drift (go.mod/go.sum must be what `go mod tidy` writes);
#   - golangci-lint (.golangci.yml): gofmt, govet, errorlint, staticcheck,
#     ineffassign, gochecknoinits, forbidigo (no fmt.Print outside cmd/)
#     and the package boundaries (depguard: client/ does not import server
#     packages, fsm/ does not use the network, raftlog/ knows nothing of
#     fsm or broker). It is pinned below and installed with `go install`
#     into $RMQ_TOOLS (default ~/.cache/rmq-tools), not a go.mod tool
#     dependency, which would add about 200 modules to go.mod.
# Then every fuzz target mutates inputs for 2 s (scripts/fuzz.sh --short,
# about 3-4 minutes for its ~50 targets, a third of it building the
# instrumented test binaries); the race run above already replayed their
# seeds and testdata/fuzz corpora. Long campaigns: scripts/fuzz.sh --time 10m.
# Then the RocketMQ compatibility proof (e2e/rocketmq), its own Go module
# so that rocketmq-client-go stays out of the main module's dependencies;
# its harness runs under the race detector, the RocketMQ tests without it:
# it would report races inside the unmodified third-party client
# (apache/rocketmq-client-go#790, #1115); rmq's servers run in their own
# processes there and are raced by the main suite.
# gotestsum (a tool dependency in go.mod) prints one line per package and,
# at the end, every skipped test with its reason, so a test that could not
# run here (e.g. the compose test without podman) is visible. This is the
# README's test command and what .ci/run executes on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."

GOLANGCI_LINT_VERSION=v2.15.0

echo "== go vet ./..."
go vet ./...

echo "== go mod tidy -diff"
if ! go mod tidy -diff; then
  echo "go.mod/go.sum differ from what 'go mod tidy' writes (diff above): run it and commit the result" >&2
  exit 1
fi

echo "== golangci-lint $GOLANGCI_LINT_VERSION run ./..."
tools="${RMQ_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/rmq-tools}/golangci-lint-$GOLANGCI_LINT_VERSION"
if [ ! -x "$tools/golangci-lint" ]; then
  echo "   (installing it into $tools; once per machine)"
  GOBIN="$tools" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
fi
"$tools/golangci-lint" run ./...

echo "== go test -race ./... (via gotestsum)"
go tool gotestsum --format pkgname --format-hide-empty-pkg -- -race -count=1 -timeout 15m ./...

echo "== scripts/fuzz.sh --short: every fuzz target for 2s"
scripts/fuzz.sh --short

echo "== e2e/rocketmq: unmodified rocketmq-client-go v2.1.2 against rmq (its own module)"
(cd e2e/rocketmq && go vet ./... && go mod tidy -diff && "$tools/golangci-lint" run ./... \
  && go test -race -count=1 -run Harness ./... && go test -count=1 -timeout 10m ./...)
