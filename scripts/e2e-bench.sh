#!/usr/bin/env bash
# End-to-end latency and election stability on one group (issue #18): starts
# a NameServer and three broker processes on 127.0.0.1 (ports 28876,
# 280x1/280x2) with --flush async (or --flush), then
#   1. finds the end-to-end maximum: `rmq bench e2e --rate 0` (producers and
#      a consumer as fast as they go) for --max-for;
#   2. runs `rmq bench e2e` --runs times at 20 000 msgs/s and --runs times
#      at half the maximum, --duration each, and prints p50/p99/max of the
#      latency from scheduled send to delivery, and what was missing;
#   3. with --soak D, runs `rmq bench produce --clients 4` as fast as it
#      goes for D and reports whether any leader election happened: the
#      group's Raft term before and after, and the brokers' election and
#      lease warnings (heartbeat timeouts, lost quorum contact).
# Each e2e line is followed by its latency split at the store time (due ->
# stored: producer and write path; stored -> delivered: commit, apply,
# pull, delivery). With --trace, every broker runs its flight recorder
# (--trace-dir DIR/traces/nI): an election, a lost leadership or a stall
# leaves the seconds before it there (needs --out; costs a few % CPU).
# Every run's JSON is kept in --out DIR (default: a temporary directory,
# removed). Only 127.0.0.1 is used; every process is stopped on exit.
#
#   scripts/e2e-bench.sh [--runs N] [--duration D] [--max-for D] [--soak D] [--flush async|sync] [--trace] [--rmq PATH] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 duration=20s max_for=10s soak="" flush=async rmq="" out="" trace=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --max-for) max_for=$2; shift 2 ;;
    --soak) soak=$2; shift 2 ;;
    --flush) flush=$2; shift 2 ;;
    --trace) trace=1; shift ;;
    --rmq) rmq=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "--runs wants a positive integer" >&2; exit 2; }
[ -z "$trace" ] || [ -n "$out" ] || { echo "--trace needs --out DIR (the traces are kept there)" >&2; exit 2; }
work=$(mktemp -d)
keep=$out
[ -n "$out" ] || out="$work/out"
mkdir -p "$out"
[ -n "$rmq" ] || { rmq="$work/rmq"; go build -o "$rmq" ./cmd/rmq; }
ns=127.0.0.1:28876
export RMQ_NAMESRV=$ns
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$keep" ]; then cp "$work"/*.log "$keep"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

peers=n0=127.0.0.1:28012,n1=127.0.0.1:28022,n2=127.0.0.1:28032
"$rmq" --log-level warn namesrv --listen "$ns" 2>>"$work/namesrv.log" & pids+=($!)
for i in 0 1 2; do
  traceargs=()
  [ -z "$trace" ] || traceargs=(--trace-dir "$out/traces/n$i")
  "$rmq" --namesrv "$ns" --log-level warn broker --id "n$i" --data "$work/n$i" --flush "$flush" "${traceargs[@]}" \
    --listen "127.0.0.1:280$((i + 1))1" --raft "127.0.0.1:280$((i + 1))2" --peers "$peers" --bootstrap \
    2>>"$work/n$i.log" & pids+=($!)
done
"$rmq" cluster status --wait 30s >/dev/null
"$rmq" topic create e2e --queues 8 >/dev/null
"$rmq" topic create soak --queues 8 >/dev/null

# json FILE EXPR: a value of a bench's JSON report, by a Python expression over r
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }
term() { "$rmq" cluster status -o json | python3 -c "import json,sys; print(max(g['term'] for g in json.load(sys.stdin)))"; }
# Lines the brokers log at warn when an election starts or a leader loses
# its quorum (crash detection's elections log at info; the term counts
# them); the first election of a fresh group is one of them.
elections() { cat "$work"/n?.log | grep -cE 'heartbeat timeout reached|Election timeout reached|failed to contact quorum' || true; }

e2e() { # label, file, rmq bench e2e args...
  local label=$1 file=$2; shift 2
  "$rmq" bench e2e --topic e2e --no-progress -o json "$@" >"$file" 2>>"$work/bench.err"
  printf '%-26s  sent %8s  received %8s  missing %3s  p50 %8s us  p99 %8s us  max %8s us\n' "$label" \
    "$(json "$file" "r['end_to_end']['sent']")" "$(json "$file" "r['end_to_end']['messages']")" \
    "$(json "$file" "r['end_to_end']['missing']")" "$(json "$file" "r['end_to_end']['latency_us']['p50']")" \
    "$(json "$file" "r['end_to_end']['latency_us']['p99']")" "$(json "$file" "r['end_to_end']['latency_us']['max']")"
  # (an rmq older than the split, given with --rmq, reports none)
  printf '%-26s  due->stored p50/p99/max %s us; stored->delivered %s us\n' "" \
    "$(json "$file" "'/'.join(str(r['end_to_end'].get('to_store_us', {}).get(k, '-')) for k in ('p50','p99','max'))")" \
    "$(json "$file" "'/'.join(str(r['end_to_end'].get('store_to_delivery_us', {}).get(k, '-')) for k in ('p50','p99','max'))")"
}

echo "== flush $flush; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
e2e "e2e maximum (rate 0)" "$out/max.json" --rate 0 --duration "$max_for"
max=$(json "$out/max.json" "int(r['end_to_end']['msgs_per_sec'])")
half=$((max / 2))
echo "end-to-end maximum: $max msgs/s received; half: $half msgs/s"
for rate in 20000 "$half"; do
  for r in $(seq 1 "$runs"); do
    e2e "e2e at $rate msgs/s, run $r" "$out/e2e-$rate-$r.json" --rate "$rate" --duration "$duration"
  done
done

if [ -n "$soak" ]; then
  t0=$(term) e0=$(elections)
  echo "== full-load produce for $soak (4 clients, async, as fast as possible); term $t0"
  "$rmq" bench produce --topic soak --clients 4 --mode async --rate 0 --count 0 --duration "$soak" --no-progress -o json \
    >"$out/soak.json" 2>>"$work/bench.err"
  t1=$(term) e1=$(elections)
  printf 'soak: %s msgs/s over %s; term %s -> %s; election or lease warnings during it: %d\n' \
    "$(json "$out/soak.json" "int(r['total']['msgs_per_sec'])")" "$soak" "$t0" "$t1" "$((e1 - e0))"
fi
echo "broker RSS now (MiB, n0 n1 n2): $(for p in "${pids[@]:1}"; do awk '/VmRSS/ {printf "%d ", $2/1024}' "/proc/$p/status"; done)"
