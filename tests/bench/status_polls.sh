#!/usr/bin/env bash
# Status-poll throughput over HTTP (the hottest path), memory store: starts the real server on
# a free loopback port, creates a session, and lets wrk poll its status for a fixed time.
# Usage: tests/bench/status_polls.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-64}
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
./target/release/irma-server -q -l 127.0.0.1 -p "$port" --no-auth \
  -s host/demo/irma_configuration -k host/demo/privatekeys &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/session/AAAAAAAAAAAAAAAAAAAA/status" >/dev/null && break; sleep 0.1; done
token=$(curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$port/session" \
  -d '{"@context":"https://irma.app/ld/request/disclosure/v2","disclose":[[["stateless-demo.University.studentCard.studentID"]]]}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo "status polls, memory store, ${secs}s, ${conns} connections:"
wrk -t2 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/session/$token/status" | grep -E "Requests/sec|Latency|Non-2xx|errors"
