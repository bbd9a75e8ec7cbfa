#!/usr/bin/env bash
# The long version of e2e/TestDrillKillGroupLeaderAndNameServer: two
# broker groups of three rmq processes and two NameServers under unkeyed
# produce and consume; each round SIGKILLs one group's leader and one
# NameServer at the same time (alternating broker-a/ns0 and broker-b/ns1),
# waits for the group's new leader, and restarts both. Prints the drill
# report: acknowledged, lost (must be 0), stored twice, the pause after
# each kill and the longest gap between acknowledged sends.
#
#   scripts/groups-drill.sh [--rounds N]      (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=10
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
RMQ_GROUPS_DRILL_ROUNDS=$rounds go test -count=1 -timeout 30m -run '^TestDrillKillGroupLeaderAndNameServer$' -v ./e2e |
  grep -v -E '^\s+cluster\.go:|\[(ERROR|WARN)\]'
