#!/usr/bin/env bash
# What message trace costs the producer (issue #14: at most 5 %): produce
# throughput with every send traced (ProducerConfig.Trace, trace records
# written asynchronously to RMQ_SYS_TRACE_TOPIC) against untraced, in one
# interleaved run. bench-compare.sh runs the same binary as A (untraced)
# and as B through a wrapper that adds --trace to `rmq bench produce`, so
# both use the same fresh three-node groups and workload; its consume
# figure (an untraced consumer of a backlog produced traced in B) comes
# along.
#
#   scripts/bench-trace.sh [--rounds N] [--bin RMQ_BINARY] [--traced-first]
#
# --traced-first runs the traced bench first in every round (A = traced),
# to see whether the order within a round moves the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 bin="" first=untraced
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --traced-first) first=traced; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$bin" ]; then
  bin=$work/rmq
  go build -o "$bin" ./cmd/rmq
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
cat >"$work/rmq-trace" <<WRAP
#!/usr/bin/env bash
args=() bench=""
for a in "\$@"; do
  args+=("\$a")
  case "\$a" in
    bench) bench=1 ;;
    produce) [ -n "\$bench" ] && args+=(--trace) ;;
  esac
done
exec "$bin" "\${args[@]}"
WRAP
chmod +x "$work/rmq-trace"
machine="$(uname -m), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$first" = traced ]; then
  echo "A = every send traced, B = untraced ($machine)"
  scripts/bench-compare.sh --a "$work/rmq-trace" --b "$bin" --rounds "$rounds"
else
  echo "A = untraced, B = every send traced ($machine)"
  scripts/bench-compare.sh --a "$bin" --b "$work/rmq-trace" --rounds "$rounds"
fi
