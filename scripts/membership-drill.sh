#!/usr/bin/env bash
# Membership drill across real processes: a NameServer and a three-node
# group on 127.0.0.1:3187x-3188x, `rmq failover drill --changes 0`
# (producers and a consumer that account for every message) running
# throughout, while a fourth node joins (rmq broker --join, rmq node add:
# non-voter, catch-up, promotion) and the leader is removed (it hands over
# first) and stopped (with --preferred, a node other than the preferred one). Prints the membership after each step and the drill's
# report (lost messages, write pauses over 100ms). Exit status non-zero if
# an acknowledged message was lost.
#
#   scripts/membership-drill.sh [--rmq PATH] [--preferred n1]
#
# --preferred ID starts every node with --preferred-leader ID, and the
# drill then also transfers leadership away from it once and waits for
# it to return.
#
# Only 127.0.0.1 is used. Every process the script starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

rmq="" preferred=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rmq) rmq=$2; shift 2 ;;
    --preferred) preferred=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
if [ -z "$rmq" ]; then
  rmq="$work/rmq"
  go build -o "$rmq" ./cmd/rmq
fi

declare -A pid
pids_to_stop=()
cleanup() {
  for p in "${pids_to_stop[@]}" "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ns=127.0.0.1:31870
export RMQ_NAMESRV=$ns
peers=n0=127.0.0.1:31881,n1=127.0.0.1:31883,n2=127.0.0.1:31885
extra=()
[ -n "$preferred" ] && extra=(--preferred-leader "$preferred")
start_node() { # id client-port raft-port flags...
  local id=$1 cport=$2 rport=$3
  shift 3
  "$rmq" --log-level warn broker --id "$id" --data "$work/$id" \
    --listen "127.0.0.1:$cport" --raft "127.0.0.1:$rport" "${extra[@]}" "$@" 2>>"$work/$id.log" &
  pid[$id]=$!
}
stop_node() { kill "${pid[$1]}"; wait "${pid[$1]}" 2>/dev/null || true; unset "pid[$1]"; }

"$rmq" --log-level warn namesrv --listen "$ns" 2>>"$work/namesrv.log" &
pids_to_stop+=($!)
start_node n0 31880 31881 --peers "$peers" --bootstrap
start_node n1 31882 31883 --peers "$peers" --bootstrap
start_node n2 31884 31885 --peers "$peers" --bootstrap
"$rmq" cluster status --wait 30s >/dev/null

leader() {
  "$rmq" --timeout 2s cluster status -o json 2>/dev/null | grep -o '"leader": "[^"]*"' | head -n 1 | cut -d'"' -f4
}

"$rmq" failover drill --changes 0 > "$work/report.txt" &
drill=$!
pids_to_stop+=($drill)
sleep 3 # steady load before the first change

echo "== starting n3 with --join and adding it" >&2
start_node n3 31886 31887 --join --peers "$peers"
"$rmq" --timeout 30s node add n3 127.0.0.1:31887 --wait 2m
"$rmq" cluster status
sleep 2

old=$(leader)
if [ -n "$preferred" ] && [ "$preferred" = "$old" ]; then
  # keep the preferred node: remove another one (the leader moves only by the transfer below)
  old=n0
  [ "$preferred" = n0 ] && old=n1
fi
echo "== removing $old (leader: $(leader))" >&2
"$rmq" --timeout 30s node remove "$old"
stop_node "$old"
sleep 2
"$rmq" cluster status

if [ -n "$preferred" ]; then
  for _ in $(seq 1 100); do [ "$(leader)" = "$preferred" ] && break; sleep 0.1; done
  other=n3
  [ "$preferred" = n3 ] && other=$(leader)
  echo "== moving leadership from the preferred $preferred to $other; it returns by itself" >&2
  "$rmq" failover transfer --to "$other" --topic membership-transfer-probe >/dev/null # its own topic and group: not the drill's
  for _ in $(seq 1 100); do [ "$(leader)" = "$preferred" ] && break; sleep 0.1; done
  echo "leader now $(leader)" >&2
  sleep 2
fi

kill -INT "$drill"
status=0
wait "$drill" || status=$?
cat "$work/report.txt"
exit "$status"
