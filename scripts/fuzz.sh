#!/usr/bin/env bash
# Runs every fuzz target of the module, one after the other.
#
#   scripts/fuzz.sh [--time D] [--parallel N] [--minimize D] [--short] [PATTERN]
#
#   --time D      how long each target fuzzes (a Go duration; default 1m;
#                 the issue's campaigns use 10m)
#   --parallel N  fuzzing worker processes per target (default 1, which
#                 leaves the other core to whoever shares the machine)
#   --minimize D  how long the fuzzer may spend minimizing one input, new
#                 coverage or a crasher (default 10s; Go's own default of
#                 60s stalls targets whose inputs take milliseconds)
#   --short       the test command's smoke run: --time 2s --parallel 2
#                 --minimize 1s
#   PATTERN       an extended regexp; only targets whose "pkg/FuzzName"
#                 (e.g. raftlog/FuzzOpenStore) matches run
#
# Targets are discovered, not listed: every package with a func Fuzz* in
# a _test.go file is compiled once with fuzzing instrumentation
# (go test -c -fuzz), and the binary lists its targets (-test.list, as
# go test -list does). Each target then runs from its package directory
# with the go command's corpus cache ($GOCACHE/fuzz), so a campaign
# continues where the last one stopped, and seeds in testdata/fuzz are
# replayed first. Temporary files go to a tmpfs (/dev/shm, or
# $RMQ_FUZZ_TMP): several targets open stores and FSMs per input, and on
# a shared disk their fsyncs cost 20x.
#
# It prints one line per target (execs, new interesting inputs, corpus
# size, as the fuzzer counts them; inputs run while minimizing are not
# counted) and, for a failure, the crasher file the fuzzer wrote into the
# package's testdata/fuzz (commit it as a regression seed once fixed) and
# the log (logs stay in $RMQ_FUZZ_LOGS, default <tmpfs>/rmq-fuzz-logs).
# It exits non-zero if any target failed.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=1m parallel=1 minimize=10s pattern=
while [ $# -gt 0 ]; do
  case "$1" in
    --time) fuzztime="$2"; shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --minimize) minimize="$2"; shift 2 ;;
    --short) fuzztime=2s parallel=2 minimize=1s; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
    *) pattern="$1"; shift ;;
  esac
done

tmpbase="${RMQ_FUZZ_TMP:-/dev/shm}"
[ -d "$tmpbase" ] && [ -w "$tmpbase" ] || tmpbase="${TMPDIR:-/tmp}"
work="$(mktemp -d "$tmpbase/rmq-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export TMPDIR="$work/tmp"
mkdir -p "$TMPDIR" "$work/bin"
logs="${RMQ_FUZZ_LOGS:-$tmpbase/rmq-fuzz-logs}" # kept after the run
mkdir -p "$logs" && rm -f "$logs"/*.log
module="$(go list -m)"
cache="$(go env GOCACHE)/fuzz"

# seconds of a Go duration made of h, m and s parts (1h, 10m, 1m30s, 2s).
seconds() {
  local d="$1" total=0 n u
  [[ "$d" =~ ^([0-9]+[hms])+$ ]] || { echo "fuzz.sh: --time $d: want a duration such as 2s, 10m, 1h" >&2; exit 2; }
  while [[ "$d" =~ ^([0-9]+)([hms])(.*)$ ]]; do
    n="${BASH_REMATCH[1]}" u="${BASH_REMATCH[2]}" d="${BASH_REMATCH[3]}"
    case "$u" in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
  done
  echo "$total"
}
# A target that stops answering fails after its fuzz time plus two
# minutes (seed corpus, minimization, a slow start).
timeout="$(($(seconds "$fuzztime") + 120))s"
seconds "$minimize" >/dev/null

mapfile -t pkgs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Z0-9_]' . \
  | grep -v '^./e2e/' | xargs -n1 dirname | sort -u | sed 's|^\./||')

start=$(date +%s)
failed=() ran=0
printf '%-44s %8s %12s %9s %7s  %s\n' TARGET TIME EXECS NEW CORPUS RESULT
for pkg in "${pkgs[@]}"; do
  if [ -n "$pattern" ]; then # build only packages with a matching target
    grep -hoE '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go | sed "s|^func |$pkg/|" \
      | grep -Eq -- "$pattern" || continue
  fi
  bin="$work/bin/$(echo "$pkg" | tr / _).test"
  if ! go test -c -fuzz=. -o "$bin" "./$pkg" >"$logs/build-$(echo "$pkg" | tr / _).log" 2>&1; then
    echo "$pkg: build failed:" >&2
    cat "$logs/build-$(echo "$pkg" | tr / _).log" >&2
    failed+=("$pkg (build)")
    continue
  fi
  mapfile -t targets < <(cd "$pkg" && "$bin" -test.list '^Fuzz' | grep '^Fuzz' || true)
  for name in "${targets[@]}"; do
    [ -z "$pattern" ] || echo "$pkg/$name" | grep -Eq -- "$pattern" || continue
    log="$logs/$(echo "$pkg" | tr / _)_$name.log"
    t0=$(date +%s)
    retried=""
    for attempt in 1 2; do
      set +e
      (cd "$pkg" && "$bin" -test.run='^$' -test.fuzz="^$name\$" -test.fuzztime="$fuzztime" \
        -test.fuzzminimizetime="$minimize" -test.parallel="$parallel" -test.timeout="$timeout" \
        -test.fuzzcachedir="$cache/$module/$pkg") >"$log" 2>&1
      rc=$?
      set -e
      # Go's fuzzer can fail a target with nothing but "context deadline
      # exceeded" when -fuzztime ends while a worker is still minimizing
      # a new input (no crasher is written). That is the coordinator's
      # clock, not a finding: run the target once more; a second such end,
      # or any other failure, counts.
      if [ "$rc" -ne 0 ] && [ "$attempt" = 1 ] && ! grep -q 'Failing input written' "$log" \
        && [ "$(grep -vE '^(fuzz: elapsed|--- FAIL: |FAIL$)' "$log" | grep -cv 'context deadline exceeded')" = 0 ]; then
        retried=" (rerun: the first run ended with only \"context deadline exceeded\")"
        continue
      fi
      break
    done
    ran=$((ran + 1))
    stats="$(grep -Eo 'execs: [0-9]+ .*new interesting: [0-9]+ \(total: [0-9]+\)' "$log" | tail -1 || true)"
    execs="$(echo "$stats" | sed -nE 's/execs: ([0-9]+).*/\1/p')"
    new="$(echo "$stats" | sed -nE 's/.*new interesting: ([0-9]+).*/\1/p')"
    corpus="$(echo "$stats" | sed -nE 's/.*total: ([0-9]+)\).*/\1/p')"
    result=ok
    if [ -z "$stats" ]; then # the time ran out replaying the corpus
      execs=0 new=0
      result="ok (only $(grep -Eo 'baseline coverage: [0-9]+/[0-9]+' "$log" | tail -1 | sed 's/.*: //') of the corpus replayed)"
    fi
    if [ "$rc" -ne 0 ]; then
      crasher="$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "$log" | tail -1)"
      result="FAIL${crasher:+ crasher $pkg/$crasher}"
      failed+=("$pkg/$name${crasher:+: $pkg/$crasher}")
    fi
    printf '%-44s %7ss %12s %9s %7s  %s\n' "$pkg/$name" "$(($(date +%s) - t0))" "${execs:--}" "${new:--}" "${corpus:--}" "$result$retried"
    if [ "$rc" -ne 0 ]; then
      grep -vE '^fuzz: elapsed' "$log" | head -40 | sed 's/^/    /' >&2
      echo "    full log: $log" >&2
    fi
  done
done

echo "== $ran fuzz targets, ${fuzztime} each, in $(($(date +%s) - start))s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz failures (${#failed[@]}):" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
if [ "$ran" -eq 0 ]; then
  echo "fuzz.sh: no target matches ${pattern:-anything}" >&2
  exit 1
fi
