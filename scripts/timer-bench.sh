#!/usr/bin/env bash
# Delayed-message benchmark: starts a NameServer and a three-node group on
# 127.0.0.1 (ports 27876, 270x1/270x2; pprof 2706x with --pprof), runs
# `rmq bench delay --count N --spread S` (1 KiB messages due uniformly over S,
# one consumer), and reports, besides the bench's own figures (delivered,
# duplicates, lost, lateness, send rate):
#   - each broker's RSS (VmRSS, sampled every --sample seconds): before sending,
#     peak, at the end, and (peak - before) / peak pending timers, where pending
#     is acknowledged minus delivered (the bench's peak_pending);
#   - with --pprof, the same for the live Go heap (HeapAlloc after a forced GC,
#     from /debug/pprof/heap?gc=1, every 5th sample), and a CPU profile (30 s, at
#     most S/4) plus a heap profile of the leader at a quarter of S;
#   - CommitLog bytes per delayed message per node: the growth of the node's
#     log (rmq node status LogBytes: written bytes, no preallocated tail; and
#     du -sb of its commitlog directory) divided by N;
#   - with --kill, SIGKILLs the leader at half of S (not restarted) and reports
#     how long after the kill deliveries resumed (the end of the bench's longest
#     pause between deliveries).
# Every process it starts is stopped, and its temporary directory removed, on
# exit; --out DIR keeps the bench JSON, samples, logs and profiles.
#
#   scripts/timer-bench.sh [--count 1000000] [--spread 10m] [--grace 30s] [--clients 2]
#                          [--size 1024] [--flush sync|async] [--sample 2] [--kill]
#                          [--pprof] [--out DIR] [--rmq PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
count=1000000 spread=10m grace=30s clients=2 size=1024 flush=sync sample=2
kill_leader=0 pprof=0 out="" rmq=""
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count=$2; shift 2 ;;
    --spread) spread=$2; shift 2 ;;
    --grace) grace=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --flush) flush=$2; shift 2 ;;
    --sample) sample=$2; shift 2 ;;
    --kill) kill_leader=1; shift ;;
    --pprof) pprof=1; shift ;;
    --out) out=$2; shift 2 ;;
    --rmq) rmq=$2; shift 2 ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

# seconds DURATION: whole seconds of a Go-style duration made of h, m, s parts.
seconds() {
  local d=$1 total=0 n u
  [[ $d =~ ^([0-9]+[hms])+$ ]] || { echo "bad duration $d: want e.g. 10m, 90s, 1h30m" >&2; exit 2; }
  while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
    n=${BASH_REMATCH[1]} u=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
    case $u in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
  done
  echo "$total"
}
spread_s=$(seconds "$spread")
grace_s=$(seconds "$grace")
[[ $count =~ ^[0-9]+$ ]] && [ "$count" -ge 1 ] || { echo "--count must be a positive number" >&2; exit 2; }
[[ $sample =~ ^[0-9]+$ ]] && [ "$sample" -ge 1 ] || { echo "--sample must be whole seconds, 1 or more" >&2; exit 2; }
[ "$spread_s" -ge 4 ] || { echo "--spread must be 4s or more" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/timer-bench.XXXXXX")
ns=127.0.0.1:27876
export RMQ_NAMESRV=$ns
pids=()         # every server process this script started
declare -a bpid # broker pid by node number
bench_pid="" sampler_pid=""

alive() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) && [ "${s:0:1}" != Z ]; }
stop_all() {
  local p
  for p in $sampler_pid $bench_pid; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for _ in $(seq 1 100); do # up to 20 s for a clean stop
    local up=0
    for p in "${pids[@]}"; do alive "$p" && up=1; done
    [ "$up" = 0 ] && break
    sleep 0.2 # poll interval while the servers stop
  done
  for p in "${pids[@]}" $sampler_pid $bench_pid; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=() sampler_pid="" bench_pid=""
}
cleanup() {
  stop_all
  if [ -n "$out" ]; then
    mkdir -p "$out"
    cp "$work"/*.json "$work"/*.txt "$work"/*.log "$work"/*.pprof "$out"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$rmq" ]; then
  rmq="$work/rmq"
  go build -o "$rmq" ./cmd/rmq
fi

client_addr() { echo "127.0.0.1:270$(($1 + 1))1"; }
pprof_addr() { echo "127.0.0.1:2706$1"; }

start_cluster() {
  local peers=n0=127.0.0.1:27012,n1=127.0.0.1:27022,n2=127.0.0.1:27032 i extra
  "$rmq" --log-level warn namesrv --listen "$ns" 2>>"$work/namesrv.log" & pids+=($!)
  for i in 0 1 2; do
    extra=()
    [ "$pprof" = 1 ] && extra=(--pprof "$(pprof_addr "$i")")
    "$rmq" --namesrv "$ns" --log-level warn broker --id "n$i" --data "$work/n$i" --flush "$flush" \
      --listen "$(client_addr "$i")" --raft "127.0.0.1:270$((i + 1))2" --peers "$peers" --bootstrap \
      ${extra[@]+"${extra[@]}"} 2>>"$work/n$i.log" & pids+=($!)
    bpid[$i]=$!
  done
  for _ in $(seq 1 100); do
    "$rmq" --timeout 1s cluster status -o json 2>/dev/null | grep -q '"leader": "n' && return 0
    sleep 0.1 # poll interval while the group elects
  done
  echo "cluster did not elect a leader" >&2; exit 1
}

leader() { "$rmq" --timeout 2s cluster status -o json 2>/dev/null | grep -o '"leader": "n[0-9]"' | head -n 1 | grep -o '[0-9]' || true; }

# jfield FILE BLOCK KEY: the first number "KEY": N at or after the line matching BLOCK.
jfield() { sed -n "/$2/,\$p" "$1" | grep -o "\"$3\": -\{0,1\}[0-9.e+]*" | head -n 1 | awk '{print $2}'; }

log_bytes() { # $1 = node number: its CommitLog's written bytes, or "" if it does not answer
  "$rmq" --timeout 2s node status --addr "$(client_addr "$1")" -o json 2>/dev/null | grep -o '"LogBytes": [0-9]*' | awk '{print $2}' || true
}
du_bytes() { du -sb "$work/n$1/commitlog" 2>/dev/null | awk '{print $1}'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
heap_alloc() { # $1 = node number: its live Go heap (HeapAlloc right after a GC), from its pprof server
  curl -s --max-time 5 "http://$(pprof_addr "$1")/debug/pprof/heap?debug=1&gc=1" 2>/dev/null | grep -o '^# HeapAlloc = [0-9]*' | awk '{print $4}' || true
}

sampler() { # one line per sample and live broker: unix-ms node rss-kB heap-bytes
  local n=$(((spread_s + grace_s + 7200) / sample)) i r h now slp=""
  trap 'kill $slp 2>/dev/null; exit 0' TERM
  for k in $(seq 1 "$n"); do
    now=$(date +%s%3N)
    for i in 0 1 2; do
      r=$(rss_kb "${bpid[$i]}")
      [ -n "$r" ] || continue
      h=""
      [ "$pprof" = 1 ] && [ $((k % 5)) = 1 ] && h=$(heap_alloc "$i") # a forced GC: every 5th sample only
      echo "$now n$i $r ${h:--}" >>"$work/samples.txt"
    done
    if [ $((k % (30 / sample + 1))) = 0 ]; then
      printf 'timer-bench: %ds, RSS MiB:' $(((now - t0) / 1000)) >&2
      for i in 0 1 2; do r=$(rss_kb "${bpid[$i]}"); printf ' n%d %s' "$i" "$([ -n "$r" ] && echo $((r / 1024)) || echo -)" >&2; done
      echo " | $(grep -h '^deliver\|^send' "$work/bench.err" 2>/dev/null | tail -n 1)" >&2
    fi
    sleep "$sample" & # sampling interval
    slp=$!
    wait "$slp"
  done
}

echo "timer-bench: $count x $size B due over $spread (+$grace grace), $clients clients, flush $flush; work dir $work" >&2
start_cluster
"$rmq" topic create bench-delay --queues 8 >/dev/null
sleep 2 # let the group settle (registration, first snapshot) before the baseline
declare -a rss0 lb0 du0
for i in 0 1 2; do
  rss0[$i]=$(rss_kb "${bpid[$i]}") lb0[$i]=$(log_bytes "$i") du0[$i]=$(du_bytes "$i")
done
if [ "$pprof" = 1 ]; then
  declare -a heap0
  for i in 0 1 2; do heap0[$i]=$(heap_alloc "$i"); done
fi
t0=$(date +%s%3N)
sampler & sampler_pid=$!
"$rmq" bench delay --topic bench-delay --count "$count" --spread "$spread" --grace "$grace" \
  --clients "$clients" --size "$size" -o json >"$work/bench.json" 2>"$work/bench.err" & bench_pid=$!

kill_ms="" killed=""
if [ "$pprof" = 1 ]; then
  sleep $((spread_s / 4)) # a quarter of the spread: sending is over, timers are being delivered
  l=$(leader)
  if [ -n "$l" ]; then
    secs=$((spread_s / 4 < 30 ? spread_s / 4 : 30)) # over before half of the spread (--kill)
    echo "timer-bench: profiling leader n$l for ${secs}s" >&2
    curl -s --max-time 5 "http://$(pprof_addr "$l")/debug/pprof/heap" -o "$work/heap-n$l.pprof" || true
    curl -s --max-time $((secs + 30)) "http://$(pprof_addr "$l")/debug/pprof/profile?seconds=$secs" -o "$work/cpu-n$l.pprof" || true
  fi
fi
if [ "$kill_leader" = 1 ]; then
  now=$(date +%s%3N)
  wait_s=$(((t0 + spread_s * 500 - now) / 1000))
  [ "$wait_s" -gt 0 ] && sleep "$wait_s" # until half of the spread
  l=$(leader)
  [ -n "$l" ] || { echo "no leader to kill" >&2; exit 1; }
  kill -9 "${bpid[$l]}"
  kill_ms=$(date +%s%3N) killed=n$l
  wait "${bpid[$l]}" 2>/dev/null || true # reaped here, so bash reports no "Killed" job
  echo "timer-bench: SIGKILLed leader $killed at $(((kill_ms - t0) / 1000))s" >&2
fi
bench_rc=0
wait "$bench_pid" || bench_rc=$?
bench_pid=""
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=""
if [ "$bench_rc" != 0 ]; then
  echo "rmq bench delay failed (exit $bench_rc):" >&2
  tail -n 20 "$work/bench.err" >&2
  exit 1
fi

# CommitLog growth per message, per node.
cl_line="" du_line=""
for i in 0 1 2; do
  lb=$(log_bytes "$i") d=$(du_bytes "$i")
  if [ -n "$lb" ] && [ -n "${lb0[$i]}" ]; then
    cl_line+=$(awk -v a="$lb" -v b="${lb0[$i]}" -v n="$count" -v i="$i" 'BEGIN {printf " n%d %.1f", i, (a - b) / n}')
  else
    cl_line+=" n$i -"
  fi
  du_line+=$(awk -v a="$d" -v b="${du0[$i]}" -v n="$count" -v i="$i" 'BEGIN {printf " n%d %.1f", i, (a - b) / n}')
done

b="$work/bench.json"
peak_pending=$(jfield "$b" '"delay": {' peak_pending)
echo
echo "== rmq bench delay --count $count --spread $spread --grace $grace --clients $clients --size $size (flush $flush)"
printf 'send rate %.0f msgs/s; sent %s (%s as timers); delivered %s, duplicates %s, lost %s, delivered at once %s, early %s\n' \
  "$(jfield "$b" '"total"' msgs_per_sec)" "$(jfield "$b" '"delay": {' sent)" "$(jfield "$b" '"delay": {' timers)" \
  "$(jfield "$b" '"delay": {' delivered)" "$(jfield "$b" '"delay": {' duplicates)" "$(jfield "$b" '"delay": {' lost)" \
  "$(jfield "$b" '"delay": {' immediate)" "$(jfield "$b" '"delay": {' early)"
for blk in lateness_us store_lateness_us; do
  label="received - due"; [ "$blk" = store_lateness_us ] && label="stored - due  "
  printf 'lateness %s: p50 %s ms, p90 %s ms, p99 %s ms, p99.9 %s ms, max %s ms (%s timed)\n' "$label" \
    "$(awk -v v="$(jfield "$b" "\"$blk\": {" p50)" 'BEGIN {printf "%.1f", v / 1000}')" \
    "$(awk -v v="$(jfield "$b" "\"$blk\": {" p90)" 'BEGIN {printf "%.1f", v / 1000}')" \
    "$(awk -v v="$(jfield "$b" "\"$blk\": {" p99)" 'BEGIN {printf "%.1f", v / 1000}')" \
    "$(awk -v v="$(jfield "$b" "\"$blk\": {" p99_9)" 'BEGIN {printf "%.1f", v / 1000}')" \
    "$(awk -v v="$(jfield "$b" "\"$blk\": {" max)" 'BEGIN {printf "%.1f", v / 1000}')" \
    "$(jfield "$b" "\"$blk\": {" count)"
done
echo "peak pending timers (acknowledged - delivered): $peak_pending"
for i in 0 1 2; do
  note=""; [ "n$i" = "$killed" ] && note=" (killed)"
  awk -v node="n$i" -v before="${rss0[$i]}" -v pend="$peak_pending" -v note="$note" '
    $2 == node { if ($3 > peak) peak = $3; last = $3 }
    END { if (peak == "") { printf "%s: no samples\n", node; exit }
          printf "%s RSS: before %.0f MiB, peak %.0f MiB, last %.0f MiB%s; (peak - before) / peak pending = %.1f B per timer\n",
            node, before / 1024, peak / 1024, last / 1024, note, (peak - before) * 1024 / pend }' "$work/samples.txt"
done
if [ "$pprof" = 1 ]; then
  for i in 0 1 2; do
    awk -v node="n$i" -v before="${heap0[$i]}" -v pend="$peak_pending" '
      $2 == node && $4 != "-" { if ($4 > peak) peak = $4; last = $4 }
      END { if (peak == "") exit
            printf "%s Go heap: before %.0f MiB, peak %.0f MiB, last %.0f MiB; (peak - before) / peak pending = %.1f B per timer\n",
              node, before / 1048576, peak / 1048576, last / 1048576, (peak - before) / pend }' "$work/samples.txt"
  done
fi
echo "CommitLog bytes per delayed message, per node (written):$cl_line"
echo "CommitLog bytes per delayed message, per node (du -sb; sync flush preallocates up to 8 MiB ahead):$du_line"
if [ -n "$kill_ms" ]; then
  gf=$(jfield "$b" '"delay": {' gap_from_unix_ms) gt=$(jfield "$b" '"delay": {' gap_to_unix_ms)
  awk -v k="$kill_ms" -v f="$gf" -v t="$gt" -v who="$killed" 'BEGIN {
    printf "killed leader %s: longest pause in deliveries %.2f s, from %.2f s before the kill; deliveries resumed %.2f s after the kill\n",
      who, (t - f) / 1000, (k - f) / 1000, (t - k) / 1000
    if (f > k || t < k) print "  (the longest pause does not span the kill: see samples and logs)" }'
fi
for i in 0 1 2; do
  n=$(grep -c '\[WARN\]\|\[ERROR\]' "$work/n$i.log" 2>/dev/null || true)
  echo "n$i log: ${n:-0} warnings/errors"
  grep '\[WARN\]\|\[ERROR\]' "$work/n$i.log" 2>/dev/null | sed 's/^[^ ]* //' | cut -c1-160 | sort | uniq -c | sort -rn | head -n 3 || true
done
