#!/usr/bin/env bash
# Produce throughput of one broker group against two, in one run on one
# machine, interleaved (1, 2, 1, 2, ...): each round starts `rmq dev
# --groups N` (three nodes a group, flush async, one NameServer) on
# 127.0.0.1 ports 30870-30996, creates topic bench with 8 queues on every
# group, runs `rmq bench produce` (4 async clients, 1 KiB, unlimited rate)
# for --duration, and prints msgs/s and the CPU time per message of the
# cluster process plus the bench process (user+system, from /proc and
# /usr/bin/time). Every group's leader shares the same cores here, so two
# groups cannot double the throughput of one; the figure shows what the
# second group's leader buys on this machine. Check `uptime` first.
#
#   scripts/groups-bench.sh [--rounds N] [--duration 10s] [--bin PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 duration=10s bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
if [ -z "$bin" ]; then
  bin="$work/rmq"
  go build -o "$bin" ./cmd/rmq
fi
export RMQ_NAMESRV=127.0.0.1:30870
dev=""
stop_dev() { if [ -n "$dev" ]; then kill -INT "$dev" 2>/dev/null || true; wait "$dev" 2>/dev/null || true; dev=""; fi; }
trap 'stop_dev; rm -rf "$work"' EXIT
ticks=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user+system clock ticks

total() { sed -n '/"total"/,$p' | grep -o "\"$1\": [0-9.]*" | head -n 1 | awk '{print $2}'; }

echo "# $(uptime)"
for r in $(seq 1 "$rounds"); do
  for groups in 1 2; do
    dir="$work/r$r-g$groups"
    "$bin" --log-level warn dev --dir "$dir" --groups "$groups" --namesrvs 1 --flush async --dashboard "" \
      --namesrv-port 30870 --broker-port 30875 >"$work/dev.out" 2>"$work/dev.log" & dev=$!
    for _ in $(seq 1 200); do
      n=$("$bin" --timeout 1s cluster status -o json 2>/dev/null | grep -c '"leader": "n' || true)
      [ "$n" -ge "$groups" ] && break
      sleep 0.1 # poll interval while the groups elect
    done
    "$bin" topic create bench --queues 8 >/dev/null
    before=$(cpu_of "$dev")
    out=$(/usr/bin/time -f 'bench-cpu %U %S' "$bin" bench produce --topic bench --clients 4 --mode async \
      --rate 0 --duration "$duration" --no-progress -o json 2>"$work/bench.err")
    after=$(cpu_of "$dev")
    rate=$(echo "$out" | total msgs_per_sec)
    count=$(echo "$out" | total messages)
    bcpu=$(grep bench-cpu "$work/bench.err" | awk '{print $2 + $3}')
    awk -v r="$r" -v g="$groups" -v rate="$rate" -v n="$count" -v d=$((after - before)) -v t="$ticks" -v b="$bcpu" 'BEGIN {
      c = d / t; printf "round %d groups %d | %8.0f msgs/s | %9d msgs | cluster CPU %6.1fs  bench CPU %6.1fs | %5.1f us CPU/msg\n",
        r, g, rate, n, c, b, (c + b) * 1e6 / (n > 0 ? n : 1) }'
    stop_dev
    rm -rf "$dir"
  done
done
