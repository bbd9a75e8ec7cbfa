#!/usr/bin/env bash
# Measures rmq next to its peer, NATS JetStream, on one machine in one run
# (issue #18): a 3-node R3 JetStream cluster and a 3-node rmq group on
# 127.0.0.1, 1 KiB messages, in two durability pairs: NATS default with rmq
# --flush async, and NATS `sync_interval: always` with rmq --flush sync.
# Each round starts a fresh cluster per system and mode, interleaved (NATS
# default, rmq async, NATS always, rmq sync), runs the selected pairs on it
# and stops it; the summary gives medians, ranges and ratios (rmq / NATS).
#
#   scripts/peer-bench.sh [--rounds N] [--quick] [--only PAIR[,PAIR...]] [--rmq PATH] [--keep-logs DIR]
#
# Pairs (--only; default all):
#   produce1  produce, 1 client, 500 in flight (nats bench js pub async --batch 500)
#   produce4  produce, 4 clients, default window (NATS --batch 500, rmq --inflight 1024)
#   sync      one sync send at a time from 1 client: p50 / p99 latency
#   consume   drain a 1M-message backlog (NATS: ordered and durable consumers)
#   cpu       server CPU per produced message during produce4 (utime+stime
#             of every server process, from /proc/PID/stat)
#   rss       peak RSS per server (VmHWM from /proc/PID/status) over the
#             cluster's life, read before it stops
# cpu and rss need a load: alone they run produce4.
#
# nats-server v2.15.2 and natscli v0.5.0 are built with `go install` into a
# temporary GOBIN (the Go module proxy serves both) and cached in
# ~/.cache/rmq-tools (RMQ_TOOLS_CACHE), so reruns skip the build. rmq is
# built from this tree unless --rmq is given. Ports: 127.0.0.1:26000-26299
# (rmq NameServer 26876, brokers 260x1 client / 260x2 raft; NATS clients
# 26101-26103, routes 26201-26203), checked free first. --quick uses tiny
# counts and one round (unless --rounds is given): a smoke test, not a
# measurement. A full run (3 rounds) takes about 30 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 rounds_set=0 quick=0 only="" rmq="" keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2 rounds_set=1; shift 2 ;;
    --quick) quick=1; shift ;;
    --only) only=$2; shift 2 ;;
    --rmq) rmq=$2; shift 2 ;;
    --keep-logs) keep=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds wants a positive integer" >&2; exit 2; }
all_pairs="produce1 produce4 sync consume cpu rss"
want_list=${only//,/ }
[ -n "$want_list" ] || want_list=$all_pairs
for p in $want_list; do
  [[ " $all_pairs " == *" $p "* ]] || { echo "--only: unknown pair $p (want one of: $all_pairs)" >&2; exit 2; }
done
want() { [[ " $want_list " == *" $1 "* ]]; }
# cpu and rss are read around produce4, so either of them alone runs it.
if want cpu || want rss; then want produce4 || want_list="$want_list produce4"; fi

# Message counts: the same for both systems (nats bench has no --duration
# without a rate).
if [ "$quick" = 1 ]; then
  n_p1=3000 n_p4=4000 n_sync=300 n_backlog=6000
  [ "$rounds_set" = 1 ] || rounds=1
else
  n_p1=300000 n_p4=400000 n_sync=10000 n_backlog=1000000
fi
size=1024

nats_server_version=v2.15.2 natscli_version=v0.5.0
tools=${RMQ_TOOLS_CACHE:-$HOME/.cache/rmq-tools}
nats_server=$tools/nats-server-$nats_server_version
nats=$tools/nats-$natscli_version

ns=127.0.0.1:26876
rmq_peers=n0=127.0.0.1:26012,n1=127.0.0.1:26022,n2=127.0.0.1:26032
nats_url=nats://127.0.0.1:26101,nats://127.0.0.1:26102,nats://127.0.0.1:26103
ports="26876 26011 26012 26021 26022 26031 26032 26101 26102 26103 26201 26202 26203"
export RMQ_NAMESRV=$ns
hz=$(getconf CLK_TCK)

work=$(mktemp -d "${TMPDIR:-/tmp}/peer-bench.XXXXXX")
pids=() # the running cluster's server processes; for rmq the NameServer first
alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${s:0:1}" != Z ]; }
stop_cluster() {
  local p up
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for _ in $(seq 1 100); do # up to 20 s for a clean stop
    up=0
    for p in "${pids[@]}"; do alive "$p" && up=1; done
    [ "$up" = 0 ] && break
    sleep 0.2 # poll interval while the servers stop
  done
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_cluster
  if [ -n "$keep" ]; then mkdir -p "$keep" && cp "$work"/*.log "$work"/*.txt "$work"/*.tsv "$keep"/ 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for p in $ports; do
  if ss -Htln "sport = :$p" | grep -q .; then echo "port $p is in use; peer-bench needs 127.0.0.1:$ports" >&2; exit 1; fi
done

install_tools() { # builds into a temporary GOBIN, then caches
  [ -x "$nats_server" ] && [ -x "$nats" ] && return 0
  local gobin="$work/gobin"
  mkdir -p "$tools" "$gobin"
  echo "building nats-server $nats_server_version and natscli $natscli_version (cached in $tools)" >&2
  [ -x "$nats_server" ] || { (cd "$work" && GOBIN=$gobin go install "github.com/nats-io/nats-server/v2@$nats_server_version") && mv "$gobin/nats-server" "$nats_server"; }
  [ -x "$nats" ] || { (cd "$work" && GOBIN=$gobin go install "github.com/nats-io/natscli/nats@$natscli_version") && mv "$gobin/nats" "$nats"; }
  rm -rf "$gobin"
}
install_tools
if [ -z "$rmq" ]; then rmq="$work/rmq"; go build -o "$rmq" ./cmd/rmq; fi

# --- clusters ---------------------------------------------------------------

start_nats() { # $1 = default | always
  local dir="$work/nats-$1" i sync=""
  [ "$1" = always ] && sync="sync_interval: always"
  for i in 1 2 3; do
    mkdir -p "$dir/n$i"
    cat >"$dir/n$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:2610$i
jetstream {
  store_dir: "$dir/n$i"
  $sync
}
cluster {
  name: peer-bench
  listen: 127.0.0.1:2620$i
  routes: [nats-route://127.0.0.1:26201, nats-route://127.0.0.1:26202, nats-route://127.0.0.1:26203]
}
EOF
    "$nats_server" -c "$dir/n$i.conf" 2>>"$work/nats-n$i.log" & pids+=($!)
  done
  # Ready means an R3 stream can be created: account info alone can answer
  # before the meta group has every peer (a round once failed its first
  # stream create then with "context deadline exceeded").
  for _ in $(seq 1 60); do
    if "$nats" -s "$nats_url" --timeout 2s stream add ready --subjects ready --replicas 3 --storage file --defaults >/dev/null 2>&1; then
      "$nats" -s "$nats_url" --timeout 5s stream rm -f ready >/dev/null
      return 0
    fi
    sleep 0.5 # poll interval while JetStream elects its meta leader and meets its peers
  done
  echo "NATS cluster did not come up: no R3 stream could be created in 60 s (see $work/nats-n*.log)" >&2; exit 1
}

start_rmq() { # $1 = async | sync
  local dir="$work/rmq-$1" i
  "$rmq" --log-level warn namesrv --listen "$ns" 2>>"$work/rmq-namesrv.log" & pids+=($!)
  for i in 0 1 2; do
    "$rmq" --namesrv "$ns" --log-level warn broker --id "n$i" --data "$dir/n$i" --flush "$1" \
      --listen "127.0.0.1:260$((i + 1))1" --raft "127.0.0.1:260$((i + 1))2" --peers "$rmq_peers" --bootstrap \
      2>>"$work/rmq-n$i.log" & pids+=($!)
  done
  for _ in $(seq 1 150); do
    "$rmq" --timeout 1s cluster status -o json 2>/dev/null | grep -q '"leader": "n' && return 0
    sleep 0.1 # poll interval while the group elects
  done
  echo "rmq group did not elect a leader (see $work/rmq-n*.log)" >&2; exit 1
}

# --- readings ---------------------------------------------------------------

cpu_ticks() { # utime+stime of the running cluster's servers, in clock ticks
  local p t=0 v
  for p in "${pids[@]}"; do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
hwm_mib() { awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

# rmq JSON: the first "NAME": number in the total block.
rtotal() { sed -n '/"total"/,$p' "$1" | grep -o "\"$2\": [0-9.]*" | head -n 1 | awk '{print $2}'; }
# nats bench stdout: the aggregate msgs/s ("aggregated stats: 1,234 msgs/sec", or "stats:" for one client).
nrate() {
  local l
  l=$(grep 'aggregated stats:' "$1" || true)
  [ -n "$l" ] || l=$(grep ' stats: ' "$1" | head -n 1)
  echo "$l" | sed 's/.*stats: \([0-9,]*\) msgs\/sec.*/\1/' | tr -d ,
}
# nats bench --csv: the column NAME of the first client row.
ncsv() { awk -F, -v col="$2" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == col) c = i; next} c {print $c; exit}' "$1"; }

res="$work/results.tsv" # round system mode pair metric value
record() { # pair metric value (empty: the reading failed)
  local v
  v=$(awk -v v="$3" 'BEGIN {if (v == "") print "NaN"; else if (v + 0 >= 100) printf "%.0f", v; else printf "%.1f", v}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$sys" "$mode" "$1" "$2" "$v" >>"$res"
}
fail() { echo "round $round $sys $mode: $1 failed; its output:" >&2; cat "$2" >&2; exit 1; }

npub() { # out, pub type, stream, clients, msgs, extra flags...
  local out=$1 typ=$2 stream=$3 clients=$4 msgs=$5; shift 5
  "$nats" -s "$nats_url" bench js pub "$typ" "$stream.x" --stream "$stream" --create --replicas 3 --storage file \
    --maxbytes 16GB --clients "$clients" --msgs "$msgs" --size "$size" --no-progress "$@" >"$out" 2>>"$work/nats-bench.log" ||
    fail "nats bench js pub $typ" "$out"
}
rbench() { # out, rmq bench args...
  local out=$1; shift
  "$rmq" bench "$@" --no-progress -o json >"$out" 2>>"$work/rmq-bench.log" || fail "rmq bench $*" "$out"
}

run_nats() {
  local o="$work/out.txt" t0 t1
  if want produce1; then
    npub "$o" async bench 1 "$n_p1" --batch 500
    record produce1 msgs_per_sec "$(nrate "$o")"
  fi
  if want produce4; then
    t0=$(cpu_ticks)
    npub "$o" async bench 4 "$n_p4"
    t1=$(cpu_ticks)
    record produce4 msgs_per_sec "$(nrate "$o")"
    record cpu us_per_msg "$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$n_p4" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')"
  fi
  if want sync; then
    npub "$o" sync bench 1 "$n_sync" --csv "$work/sync.csv"
    record sync p50_us "$(ncsv "$work/sync.csv" P50LatencyMicroSecs)"
    record sync p99_us "$(ncsv "$work/sync.csv" P99LatencyMicroSecs)"
  fi
  if want consume; then
    npub "$o" async backlog 4 "$n_backlog"
    "$nats" -s "$nats_url" bench js ordered --stream backlog --msgs "$n_backlog" --no-progress >"$o" 2>>"$work/nats-bench.log" ||
      fail "nats bench js ordered" "$o"
    record consume msgs_per_sec "$(nrate "$o")"
    "$nats" -s "$nats_url" bench js consume --stream backlog --msgs "$n_backlog" --no-progress >"$o" 2>>"$work/nats-bench.log" ||
      fail "nats bench js consume" "$o"
    record consume durable_msgs_per_sec "$(nrate "$o")"
  fi
}

run_rmq() {
  local o="$work/out.json" t0 t1
  "$rmq" topic create bench --queues 8 >/dev/null
  if want produce1; then
    rbench "$o" produce --topic bench --clients 1 --mode async --inflight 500 --count "$n_p1" --size "$size"
    record produce1 msgs_per_sec "$(rtotal "$o" msgs_per_sec)"
  fi
  if want produce4; then
    t0=$(cpu_ticks)
    rbench "$o" produce --topic bench --clients 4 --mode async --count "$n_p4" --size "$size"
    t1=$(cpu_ticks)
    record produce4 msgs_per_sec "$(rtotal "$o" msgs_per_sec)"
    record cpu us_per_msg "$(awk -v d=$((t1 - t0)) -v hz="$hz" -v n="$n_p4" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')"
  fi
  if want sync; then
    rbench "$o" produce --topic bench --clients 1 --mode sync --concurrency 1 --count "$n_sync" --size "$size"
    record sync p50_us "$(rtotal "$o" p50)"
    record sync p99_us "$(rtotal "$o" p99)"
  fi
  if want consume; then
    rbench "$o" produce --topic backlog --clients 4 --mode async --count "$n_backlog" --size "$size"
    rbench "$o" consume --topic backlog --from first
    record consume msgs_per_sec "$(rtotal "$o" msgs_per_sec)"
  fi
}

run_one() { # system, mode
  sys=$1 mode=$2
  local first=0 i
  [ "$sys" = rmq ] && first=1 # the NameServer is not a broker
  "start_$sys" "$mode"
  "run_$sys"
  if want rss; then
    for ((i = first; i < ${#pids[@]}; i++)); do record rss "peak_mib_n$((i - first))" "$(hwm_mib "${pids[$i]}")"; done
  fi
  stop_cluster
  rm -rf "${work:?}/$sys-$mode"
  printf 'round %d %-4s %-7s |' "$round" "$sys" "$mode"
  awk -F'\t' -v r="$round" -v s="$sys" -v m="$mode" '$1 == r && $2 == s && $3 == m {printf " %s.%s %s", $4, $5, $6} END {print ""}' "$res"
}

echo "peer-bench: $rounds round(s), pairs: $want_list; $(nproc) CPUs, $(uname -r); $("$nats_server" --version 2>&1 | head -n 1), natscli $natscli_version, rmq $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
: >"$res"
for round in $(seq 1 "$rounds"); do
  run_one nats default
  run_one rmq async
  run_one nats always
  run_one rmq sync
done

# --- summary ----------------------------------------------------------------
# Per pair and metric: median [min-max] over rounds for each side, and the
# ratio of the medians rmq / NATS (higher is better for msgs/s, lower for
# latency, CPU and RSS). RSS pools every server of every round.
echo
awk -F'\t' '
  function med(key,   n, a, i, j, t) {
    n = split(vals[key], a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    lo[key] = a[1]; hi[key] = a[n]
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function fmt(key) { if (!(key in vals)) return "-"; m = med(key); return sprintf(m >= 100 ? "%.0f [%s-%s]" : "%.1f [%s-%s]", m, lo[key], hi[key]) }
  {
    metric = $5; if (metric ~ /^peak_mib_n/) metric = "peak_mib"
    key = $4 "." metric "|" $2 "-" $3
    vals[key] = vals[key] " " $6
    if (!(($4 "." metric) in seen)) { seen[$4 "." metric] = 1; order[++nf] = $4 "." metric }
  }
  END {
    printf "%-30s | %-32s | %-32s | %-32s | %-32s | %s\n", "figure", "NATS default", "rmq async", "NATS always", "rmq sync", "rmq/NATS"
    for (i = 1; i <= nf; i++) {
      f = order[i]
      nd = f "|nats-default"; ra = f "|rmq-async"; na = f "|nats-always"; rs = f "|rmq-sync"
      r1 = (nd in vals && ra in vals && med(nd) > 0) ? sprintf("%.2f", med(ra) / med(nd)) : "-"
      r2 = (na in vals && rs in vals && med(na) > 0) ? sprintf("%.2f", med(rs) / med(na)) : "-"
      printf "%-30s | %-32s | %-32s | %-32s | %-32s | %s / %s\n", f, fmt(nd), fmt(ra), fmt(na), fmt(rs), r1, r2
    }
  }' "$res"
echo "(consume.durable_msgs_per_sec is NATS only; consume.msgs_per_sec compares rmq with the NATS ordered consumer)"
