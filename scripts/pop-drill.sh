#!/usr/bin/env bash
# Pop-consumption drill: runs TestSimpleConsumersShareAQueueAcrossLeaderKill
# (three SimpleConsumers sharing one queue, 1 % of first deliveries not
# acked, the leader killed a third of the way) ROUNDS times with MESSAGES
# messages each, and prints each round's summary line. The suite runs it
# once with 20 000 messages.
#
#   scripts/pop-drill.sh [ROUNDS=3] [MESSAGES=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} messages=${2:-100000}
for i in $(seq 1 "$rounds"); do
  echo "round $i/$rounds: $messages messages"
  RMQ_POP_MESSAGES=$messages go test ./client -run '^TestSimpleConsumersShareAQueueAcrossLeaderKill$' -count=1 -v -timeout 20m |
    grep -E 'simple_test.go|^(--- |ok|FAIL)'
done
