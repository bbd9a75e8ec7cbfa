#!/usr/bin/env bash
# Produce and consume throughput with TLS everywhere (client ports,
# NameServer, Raft with mutual auth, the clients) against plaintext, in one
# interleaved run: bench-compare.sh runs the same binary as A (plaintext)
# and as B through a wrapper that adds the TLS flags, a throwaway CA made by
# `rmq tls dev-certs`.
#
#   scripts/bench-tls.sh [--rounds N] [--bin RMQ_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 bin=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
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
"$bin" tls dev-certs --dir "$work/tls" >/dev/null
# The wrapper puts the server flags after the server command and gives
# every other command the CA.
cat >"$work/rmq-tls" <<WRAP
#!/usr/bin/env bash
args=() server=""
for a in "\$@"; do
  args+=("\$a")
  case "\$a" in
    namesrv|broker) server=1; args+=(--tls-cert "$work/tls/node.pem" --tls-key "$work/tls/node-key.pem" --tls-ca "$work/tls/ca.pem") ;;
  esac
done
[ -n "\$server" ] || export RMQ_TLS_CA="$work/tls/ca.pem"
exec "$bin" "\${args[@]}"
WRAP
chmod +x "$work/rmq-tls"
echo "A = plaintext, B = TLS everywhere ($(uname -m), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg))"
scripts/bench-compare.sh --a "$bin" --b "$work/rmq-tls" --rounds "$rounds"
