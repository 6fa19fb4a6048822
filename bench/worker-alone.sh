#!/usr/bin/env bash
# Measure the scripted worker alone, and the gateway in front of it, with wrk (Debian package).
# The gateway is pinned to core 1; the worker and wrk share core 0 (so the worker figure is a floor). Prints wrk's summary lines.
# Usage: bench/worker-alone.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
conns=${2:-16}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
py=$(command -v python3)
tmp=$(mktemp -d)
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
pids=()
trap cleanup EXIT

taskset -c 0 "$py" -m smg.testing.worker --host 127.0.0.1 --port 0 >"$tmp/worker" &
pids+=($!)
for _ in $(seq 100); do grep -q SMG_WORKER_READY "$tmp/worker" && break; sleep 0.1; done
worker=$(awk '/SMG_WORKER_READY/ {print $2}' "$tmp/worker")

echo "== worker alone ($worker), c=$conns, ${secs}s"
taskset -c 0 wrk -t1 -c"$conns" -d"${secs}s" -s bench/chat.lua --latency "$worker/v1/chat/completions" \
  | grep -E 'Requests/sec|50%|99%'

taskset -c 1 "$py" -m smg --host 127.0.0.1 --port 0 --prometheus-port 0 --worker-urls "$worker" \
  --policy round_robin --log-level warn >"$tmp/gateway" &
pids+=($!)
for _ in $(seq 100); do grep -q "smg listening on" "$tmp/gateway" && break; sleep 0.1; done
gateway=$(awk '/smg listening on/ {print $4}' "$tmp/gateway")

echo "== gateway in front of it ($gateway), c=$conns, ${secs}s"
taskset -c 0 wrk -t1 -c"$conns" -d"${secs}s" -s bench/chat.lua --latency "$gateway/v1/chat/completions" \
  | grep -E 'Requests/sec|50%|99%'
