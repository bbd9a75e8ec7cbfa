#!/usr/bin/env bash
# Compares two rmq binaries in one run, interleaved (A, B, A, B, ...), on the
# figures a refactor must not move: produce with 4 async clients (1 KiB, 10 s)
# and consuming a 1M-message backlog. Each round starts a fresh NameServer and
# three-node group (flush async) on 127.0.0.1 ports 2887x/288x1/288x2 with the
# binary under test, and prints one line per figure and run.
#
#   scripts/bench-compare.sh --a OLD_BINARY --b NEW_BINARY [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
a="" b="" rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --a) a=$2; shift 2 ;;
    --b) b=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$a" ] && [ -x "$b" ] || { echo "usage: $0 --a OLD_BINARY --b NEW_BINARY [--rounds N]" >&2; exit 2; }
work=$(mktemp -d)
ns=127.0.0.1:28876
export RMQ_NAMESRV=$ns
pids=()
stop_all() { for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; rm -rf "$work"' EXIT

start_cluster() { # $1 = binary, $2 = data dir
  local peers=n0=127.0.0.1:28012,n1=127.0.0.1:28022,n2=127.0.0.1:28032
  "$1" --log-level warn namesrv --listen "$ns" 2>>"$work/namesrv.log" & pids+=($!)
  for i in 0 1 2; do
    "$1" --namesrv "$ns" --log-level warn broker --id "n$i" --data "$2/n$i" --flush async \
      --listen "127.0.0.1:280$((i + 1))1" --raft "127.0.0.1:280$((i + 1))2" --peers "$peers" --bootstrap \
      2>>"$work/n$i.log" & pids+=($!)
  done
  for _ in $(seq 1 100); do
    "$1" --timeout 1s cluster status -o json 2>/dev/null | grep -q '"leader": "n' && return 0
    sleep 0.1 # poll interval while the group elects
  done
  echo "cluster did not elect a leader" >&2; exit 1
}

total() { sed -n '/"total"/,$p' | grep -o "\"$1\": [0-9.]*" | head -n 1 | awk '{print $2}'; }

for r in $(seq 1 "$rounds"); do
  for which in A B; do
    bin=$a; [ "$which" = B ] && bin=$b
    dir="$work/$r$which"
    start_cluster "$bin" "$dir"
    "$bin" topic create bench --queues 8 >/dev/null
    p=$("$bin" bench produce --topic bench --clients 4 --mode async --duration 10s --no-progress -o json 2>/dev/null | total msgs_per_sec)
    "$bin" bench produce --topic backlog --clients 4 --mode async --count 1000000 --no-progress >/dev/null 2>&1
    c=$("$bin" bench consume --topic backlog --from first --no-progress -o json 2>/dev/null | total msgs_per_sec)
    printf 'round %d %s | produce 4 clients async %8.0f msgs/s | consume 1M backlog %8.0f msgs/s\n' "$r" "$which" "$p" "$c"
    stop_all
    rm -rf "$dir"
  done
done
