#!/usr/bin/env bash
# Long runs of the chaos harness (package chaos): a NameServer and a broker
# group of rmq processes, each broker in its own network namespace, under
# one nemesis schedule and a produce/consume workload; then the
# independent checker over the clients' history and every replica's
# stored queues. Needs root (ip netns, iptables). Prints the result row
# RELIABILITY.md uses and leaves outcome.json, history.json,
# replicas.json, samples.csv (RSS and open fds of every process), the
# process logs (logs/) and the test's own log (test.log) in the output
# directory.
#
#   scripts/chaos.sh --schedule NAME [--duration D] [--kills N] [--mode MODE]
#                    [--hold D] [--nodes N] [--out DIR] [--sample-every D]
#
#   schedules: minority-leader majority bridge ring reset one-way pause kill rolling none
#              storage (the harness builds rmq with -tags rmqfault): crash-roll
#              crash-snapshot crash-purge crash-install slow-fsync fsync-error
#   mode:      sync|async - keyed|unkeyed - clustering|orderly (default sync-keyed-clustering)
#
# Examples:
#   scripts/chaos.sh --schedule kill --kills 100 --mode sync-keyed-orderly   # 100 leader kills
#   scripts/chaos.sh --schedule none --duration 30m --sample-every 5s       # 30-minute soak
#   scripts/chaos.sh --schedule minority-leader --duration 10m
#   scripts/chaos.sh --schedule crash-roll --kills 50 --mode async-unkeyed-clustering
#
# --kills N (or --faults N) bounds the number of faults; --duration the
# fault phase; with both, whichever comes first.
set -euo pipefail
cd "$(dirname "$0")/.."
schedule="" duration="" faults="" mode="" hold="" nodes="" out="" every=""
while [ $# -gt 0 ]; do
  case "$1" in
    --schedule) schedule=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --kills|--faults) faults=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --hold) hold=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --sample-every) every=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$schedule" ] || { [ -z "$duration" ] && [ -z "$faults" ]; }; then
  echo "usage: scripts/chaos.sh --schedule NAME --duration D [--kills N] (see --help)" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "chaos.sh: needs root (network namespaces and iptables)" >&2
  exit 2
fi
out=${out:-/tmp/rmq-chaos-$schedule-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
echo "chaos.sh: schedule $schedule duration ${duration:-none} faults ${faults:-unbounded} mode ${mode:-default}; output in $out" >&2
status=0
RMQ_CHAOS_SCHEDULE=$schedule RMQ_CHAOS_DURATION=$duration RMQ_CHAOS_FAULTS=$faults RMQ_CHAOS_MODE=$mode \
RMQ_CHAOS_HOLD=$hold RMQ_CHAOS_NODES=$nodes RMQ_CHAOS_OUT=$out RMQ_CHAOS_SAMPLE_EVERY=$every \
  go test -count=1 -timeout 6h -run '^TestChaosLong$' -v ./chaos >"$out/test.log" 2>&1 || status=$?
grep -E '^\s+long_test\.go|^\s{4,}\S|^(--- |ok|FAIL|PASS)' "$out/test.log" | grep -v -E '^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}T' | grep -v '^\s*|' || true
# A run killed before its cleanup leaves namespaces behind: the package's
# TestMain removes those of dead runs (only the harness's own, by manifest).
go test -count=1 -run '^$' ./chaos >/dev/null 2>&1 || true
if [ -f "$out/summary.md" ]; then cat "$out/summary.md"; fi
exit $status
