#!/usr/bin/env bash
# Hard-kill failover drill: runs `rmq failover drill --changes 0` (producers
# and a consumer that account for every message) while SIGKILLing the
# current leader, then restarting it, N times.
#
#   scripts/failover-drill.sh                 # starts its own NameServer + 3 broker processes
#   scripts/failover-drill.sh --compose       # kills containers of `docker compose up` (or podman-compose; ENGINE=docker|podman)
#   options: --kills N (default 5)  --interval SECONDS (default 3)  --rmq PATH (default: build ./cmd/rmq)
#            --broker-rmq PATH (local mode: the brokers run this binary, the drill --rmq's; to compare broker builds)
#
# Only 127.0.0.1 is used. Every process the script starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

kills=5 interval=3 mode=local rmq="" broker_rmq=""
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) kills=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --compose) mode=compose; shift ;;
    --rmq) rmq=$2; shift 2 ;;
    --broker-rmq) broker_rmq=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ "$kills" -ge 1 ] && [ "$kills" -le 100 ] || { echo "--kills must be 1..100" >&2; exit 2; }

work=$(mktemp -d)
if [ -z "$rmq" ]; then
  rmq="$work/rmq"
  go build -o "$rmq" ./cmd/rmq
fi
broker_rmq=${broker_rmq:-$rmq}

declare -A pid
pids_to_stop=()
cleanup() {
  for p in "${pids_to_stop[@]}" "${pid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$mode" = local ]; then
  ns=127.0.0.1:19876
  peers=n0=127.0.0.1:19012,n1=127.0.0.1:19022,n2=127.0.0.1:19032
  start_node() {
    local i=$1
    "$broker_rmq" --namesrv "$ns" --log-level warn broker --id "n$i" --data "$work/n$i" \
      --listen "127.0.0.1:190$((i + 1))1" --raft "127.0.0.1:190$((i + 1))2" --peers "$peers" --bootstrap \
      2>>"$work/n$i.log" &
    pid[n$i]=$!
  }
  "$rmq" --log-level warn namesrv --listen "$ns" 2>>"$work/namesrv.log" &
  pids_to_stop+=($!)
  for i in 0 1 2; do start_node "$i"; done
  kill_node() { kill -9 "${pid[$1]}"; wait "${pid[$1]}" 2>/dev/null || true; }
  restart_node() { start_node "${1#n}"; }
else
  ns=127.0.0.1:9876
  # Containers are found by their compose service label, which both
  # docker compose and podman-compose set (podman-compose has no "kill").
  engine=${ENGINE:-}
  if [ -z "$engine" ]; then
    if docker compose version >/dev/null 2>&1; then engine=docker; else engine=podman; fi
  fi
  container() {
    local id
    id=$($engine ps -aq --filter "label=com.docker.compose.service=broker${1#n}" | head -n 1)
    [ -n "$id" ] || { echo "no container for service broker${1#n}; is the compose group up?" >&2; return 1; }
    echo "$id"
  }
  kill_node() { $engine kill --signal KILL "$(container "$1")" >/dev/null; }
  restart_node() { $engine start "$(container "$1")" >/dev/null; }
fi
export RMQ_NAMESRV=$ns

leader() {
  "$rmq" --timeout 2s cluster status -o json 2>/dev/null | grep -o '"leader": "[^"]*"' | head -n 1 | cut -d'"' -f4
}
wait_leader() { # waits up to 30 s for a leader other than $1
  for _ in $(seq 1 300); do
    l=$(leader || true)
    if [ -n "$l" ] && [ "$l" != "${1:-}" ]; then echo "$l"; return 0; fi
    sleep 0.1
  done
  echo "no new leader within 30s" >&2; return 1
}

first=$(wait_leader "")
echo "leader is $first; starting the workload" >&2
"$rmq" failover drill --changes 0 > "$work/report.txt" &
drill=$!
pids_to_stop+=($drill)
sleep 2
for k in $(seq 1 "$kills"); do
  l=$(wait_leader "")
  echo "kill $k/$kills: SIGKILL leader $l" >&2
  kill -USR1 "$drill" # marks the kill in the drill's report
  kill_node "$l"
  new=$(wait_leader "$l")
  echo "  new leader $new; restarting $l" >&2
  sleep 1
  restart_node "$l"
  sleep "$interval"
done
kill -INT "$drill"
wait "$drill" || status=$?
cat "$work/report.txt"
exit "${status:-0}"
