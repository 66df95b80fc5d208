#!/usr/bin/env bash
# Throughput in one run, on this machine: raw Redis GET (redis-benchmark) as the yardstick, then
# status polls (wrk) and whole sessions (session-load: start, connect, proofs or commitments,
# result) against the real server with the memory store and with Redis. Prints ratios.
# Usage: tests/bench/stateless.sh [seconds] [connections]   (after `cargo build --release`)
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-64}
for tool in wrk redis-server redis-benchmark; do
  command -v $tool >/dev/null || { echo "$tool not installed (apt-get install wrk redis-server)" >&2; exit 1; }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$tmp" --save "" --appendonly no >/dev/null &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

# Starts a server with extra flags; sets $server_port and $server_pid.
start_server() {
  server_port=$(free_port)
  ./target/release/irma-server -q -l 127.0.0.1 -p "$server_port" --no-auth \
    -s host/demo/irma_configuration -k host/demo/privatekeys "$@" &
  server_pid=$!
  pids+=($server_pid)
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$server_port/health" >/dev/null && break; sleep 0.1; done
}

# Status polls of one session for $secs seconds; prints requests per second.
polls() {
  local token
  token=$(curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$server_port/session" \
    -d '{"@context":"https://irma.app/ld/request/disclosure/v2","disclose":[[["stateless-demo.University.studentCard.studentID"]]]}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  local out
  out=$(wrk -t2 -c"$conns" -d"${secs}s" "http://127.0.0.1:$server_port/session/$token/status")
  if echo "$out" | grep -qE "Non-2xx|Socket errors"; then echo "$out" | grep -E "Non-2xx|Socket errors" >&2; fi
  echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}

# Status polls of $rotation sessions in turn (as a fleet of apps polls), for $secs seconds.
rotation=64
polls_rotating() {
  local tokens=() i
  for i in $(seq "$rotation"); do
    tokens+=("$(curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$server_port/session" \
      -d '{"@context":"https://irma.app/ld/request/disclosure/v2","disclose":[[["stateless-demo.University.studentCard.studentID"]]]}' \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')")
  done
  { printf 'local tokens = {'; printf '"%s",' "${tokens[@]}"; printf '}\n'
    printf 'local i = 0\nrequest = function()\n  i = i %% #tokens + 1\n'
    printf '  return wrk.format("GET", "/session/" .. tokens[i] .. "/status")\nend\n'; } > "$tmp/rotate.lua"
  local out
  out=$(wrk -t2 -c"$conns" -d"${secs}s" -s "$tmp/rotate.lua" "http://127.0.0.1:$server_port")
  if echo "$out" | grep -qE "Non-2xx|Socket errors"; then echo "$out" | grep -E "Non-2xx|Socket errors" >&2; fi
  echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}

# Redis memory per waiting session: 500 disclosure sessions started, the MEMORY USAGE of each
# one's keys summed (as the issue measured the Go server: 1072 bytes on this machine).
memory_per_session() {
  python3 - "$server_port" "$redis_port" <<'PY'
import json, subprocess, sys, urllib.request
port, redis_port = sys.argv[1:3]
req = b'{"@context":"https://irma.app/ld/request/disclosure/v2","disclose":[[["stateless-demo.University.studentCard.studentID"]]]}'
total = n = 0
for _ in range(500):
    r = urllib.request.Request(f"http://127.0.0.1:{port}/session", data=req, headers={"Content-Type": "application/json"})
    s = json.load(urllib.request.urlopen(r))
    ct = s["sessionPtr"]["u"].rsplit("/", 1)[1]
    for key in (f"token:{s['token']}", f"session:{ct}"):
        out = subprocess.run(["redis-cli", "-p", redis_port, "MEMORY", "USAGE", key], capture_output=True, text=True).stdout
        total += int(out)
    n += 1
print(f"{total / n:.0f}")
PY
}

sessions() { # kind
  ./target/release/session-load "http://127.0.0.1:$server_port" "$1" "$secs" 4 "$server_pid"
}

echo "== raw Redis GET (redis-benchmark, $conns clients)"
raw=$(redis-benchmark -p "$redis_port" -c "$conns" -n $((secs * 100000)) -t get --csv | awk -F'"' '/"GET"/ {printf "%.0f", $4}')
echo "$raw/s"

echo "== memory store"
start_server
mem_polls=$(polls)
echo "status polls: $mem_polls/s"
mem_rot=$(polls_rotating)
echo "status polls, $rotation sessions in turn: $mem_rot/s"
mem_disc=$(sessions disclosure); echo "$mem_disc"
mem_sig=$(sessions signature); echo "$mem_sig"
mem_iss=$(sessions issuance); echo "$mem_iss"
kill "$server_pid"

echo "== redis store"
start_server --store-type redis --redis-addr "127.0.0.1:$redis_port" --redis-allow-empty-password --redis-no-tls
redis_memory=$(memory_per_session)
echo "Redis memory per waiting session: $redis_memory bytes"
redis_polls=$(polls)
echo "status polls: $redis_polls/s"
redis_rot=$(polls_rotating)
echo "status polls, $rotation sessions in turn: $redis_rot/s"
redis_disc=$(sessions disclosure); echo "$redis_disc"
redis_sig=$(sessions signature); echo "$redis_sig"
redis_iss=$(sessions issuance); echo "$redis_iss"
kill "$server_pid"

echo "== redis store, every session write waits for a replica (--redis-wait-replicas 1, the Sentinel default)"
replica_port=$(free_port)
mkdir -p "$tmp/replica"
redis-server --port "$replica_port" --bind 127.0.0.1 --dir "$tmp/replica" --save "" --appendonly no \
  --replicaof 127.0.0.1 "$redis_port" >/dev/null &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$replica_port" info replication 2>/dev/null | grep -q master_link_status:up && break; sleep 0.1; done
start_server --store-type redis --redis-addr "127.0.0.1:$redis_port" --redis-allow-empty-password --redis-no-tls --redis-wait-replicas 1
wait_disc=$(sessions disclosure); echo "$wait_disc"
wait_iss=$(sessions issuance); echo "$wait_iss"
kill "$server_pid"

python3 - "$raw" "$mem_polls" "$redis_polls" "$redis_disc" "$wait_disc" "$redis_iss" "$wait_iss" "$redis_rot" "$redis_memory" <<'EOF'
import re, sys
raw, mem, red = map(float, sys.argv[1:4])
rot = float(sys.argv[8])
memory = float(sys.argv[9])
rate = lambda line: float(re.search(r"= (\d+)/s", line).group(1))
print("== ratios (same run)")
print(f"redis-mode status polls / raw Redis GET: {red/raw:.2f}x  (goal >= 0.5x)")
print(f"redis-mode status polls, sessions in turn / raw Redis GET: {rot/raw:.2f}x  (goal >= 0.5x)")
print(f"redis-mode status polls / memory-mode:   {red/mem:.2f}x")
# The Go server (irmago v0.13.3) cannot be built here (no Go toolchain): its figures are the
# ones the issue measured on this machine (its real client; ours is the test wallet).
print(f"Redis memory per waiting session / Go server's 1072 bytes: {memory/1072:.2f}x  (goal <= 0.5x)")
cpu = lambda line: float(re.search(r"server CPU ([\d.]+) ms", line).group(1))
print(f"server CPU per disclosure (Redis) / Go server's 11.3 ms: {cpu(sys.argv[4])/11.3:.2f}x  (goal <= 0.4x)")
print(f"server CPU per issuance (Redis) / Go server's 43.0 ms: {cpu(sys.argv[6])/43.0:.2f}x  (goal <= 0.4x)")
print(f"sessions/s with WAIT 1 / without: disclosure {rate(sys.argv[5])/rate(sys.argv[4]):.2f}x, issuance {rate(sys.argv[7])/rate(sys.argv[6]):.2f}x")
EOF
