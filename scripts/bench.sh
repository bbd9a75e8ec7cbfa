#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md: starts a NameServer and three
# broker processes on 127.0.0.1 (ports 29876, 290x1/290x2) for each flush
# mode, runs rmq bench three times per figure, and prints one line per run
# ("figure | run | numbers") plus broker RSS and disk usage. Takes ~12 min.
#
#   scripts/bench.sh [--runs N] [--modes "async sync"] [--rmq PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3 modes="async sync" rmq=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --rmq) rmq=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
[ -n "$rmq" ] || { rmq="$work/rmq"; go build -o "$rmq" ./cmd/rmq; }
ns=127.0.0.1:29876
export RMQ_NAMESRV=$ns
pids=()
stop_all() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; rm -rf "$work"' EXIT

start_cluster() { # $1 = flush mode
  local dir="$work/$1" peers=n0=127.0.0.1:29012,n1=127.0.0.1:29022,n2=127.0.0.1:29032
  "$rmq" --log-level warn namesrv --listen "$ns" 2>>"$work/namesrv.log" & pids+=($!)
  for i in 0 1 2; do
    "$rmq" --namesrv "$ns" --log-level warn broker --id "n$i" --data "$dir/n$i" --flush "$1" \
      --listen "127.0.0.1:290$((i + 1))1" --raft "127.0.0.1:290$((i + 1))2" --peers "$peers" --bootstrap \
      2>>"$work/n$i.log" & pids+=($!)
  done
  for _ in $(seq 1 100); do
    "$rmq" --timeout 1s cluster status -o json 2>/dev/null | grep -q '"leader": "n' && return 0
    sleep 0.1
  done
  echo "cluster did not elect a leader" >&2; exit 1
}

# field NAME: the first "NAME": value of the JSON total block
total() { sed -n '/"total"/,$p' | grep -o "\"$1\": [0-9.]*" | head -n 1 | awk '{print $2}'; }

bench() { # label, rmq bench args...
  local label=$1; shift
  for r in $(seq 1 "$runs"); do
    out=$("$rmq" bench "$@" --no-progress -o json 2>/dev/null)
    printf '%-34s | run %d | %8.0f msgs/s  %7.1f MiB/s  p50 %6s us  p99 %6s us  p99.9 %6s us\n' "$label" "$r" \
      "$(echo "$out" | total msgs_per_sec)" "$(echo "$out" | total mib_per_sec)" \
      "$(echo "$out" | total p50)" "$(echo "$out" | total p99)" "$(echo "$out" | total p99_9)"
  done
}

rss() { # broker RSS in MiB, sampled now
  for p in "${pids[@]:1}"; do awk '/VmRSS/ {printf "%d ", $2/1024}' "/proc/$p/status" 2>/dev/null || true; done
}

for mode in $modes; do
  echo "== flush $mode"
  start_cluster "$mode"
  # Disk per message on a fresh group: 300 000 x 1 KiB into one topic.
  "$rmq" bench produce --topic disk --clients 2 --mode async --count 300000 --no-progress >/dev/null 2>&1
  sleep 2 # let the consume-queue sync and the log flush run
  cl=$(du -sk "$work/$mode/n0/commitlog" | awk '{print $1}')
  cq=$(du -sk "$work/$mode/n0/fsm" | awk '{print $1}')
  all=$(du -sk "$work/$mode/n0" | awk '{print $1}')
  awk -v cl="$cl" -v cq="$cq" -v all="$all" 'BEGIN {printf "disk per 1 KiB message on n0: commitlog %.3f KiB + consume queues %.3f KiB; whole data dir %.3f KiB\n",
    cl / 300000, cq / 300000, all / 300000}'
  "$rmq" topic create bench --queues 8 >/dev/null
  bench "produce 1 client async ($mode)" produce --clients 1 --mode async --duration 10s
  bench "produce 4 clients async ($mode)" produce --clients 4 --mode async --duration 10s &
  b=$!
  sleep 5
  echo "broker RSS under load (MiB, n0 n1 n2): $(rss)"
  wait "$b"
  bench "sync send, 1 client, 1 at a time ($mode)" produce --clients 1 --mode sync --concurrency 1 --count 20000
  "$rmq" bench produce --topic backlog --clients 4 --mode async --count 1000000 --no-progress >/dev/null 2>&1
  bench "consume 1M backlog ($mode)" consume --topic backlog --from first
  max=$("$rmq" bench produce --topic e2e --clients 4 --mode async --duration 5s --no-progress -o json 2>/dev/null | total msgs_per_sec)
  half=$(awk -v m="$max" 'BEGIN {printf "%d", m / 2}')
  bench "e2e latency at $half msgs/s ($mode)" e2e --topic e2e --rate "$half" --duration 10s
  for rate in 20000 40000 60000; do
    bench "e2e latency at $rate msgs/s ($mode)" e2e --topic e2e --rate "$rate" --duration 10s
  done
  stop_all
done
