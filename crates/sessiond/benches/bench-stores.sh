#!/usr/bin/env bash
# Bounded load test: opaque-token validate over HTTP on Redis against the
# embedded store, in one run, on loopback only (the Redis
# store's budget, docs/benchmarks.md).
#
# Starts a throwaway redis-server on a free port (its CPU is counted with
# the sessiond on it), sessiond on the embedded store, and two sessiond on
# that Redis: one with the near-cache (the default) and one without. Then,
# per pair, the server CPU per request (sessiond's threads, plus Redis's
# for the Redis targets; see scripts/cpu-ratio.sh):
#   embedded vs redis (no near-cache), embedded vs redis (near-cache warm),
#   bare JSON handler vs redis (near-cache warm).
#
# Usage: crates/sessiond/benches/bench-stores.sh [seconds-per-run] [rounds]
# Needs: wrk, curl, redis-server. Bounded: 6 x rounds x seconds (+ warm-ups).
set -euo pipefail
DURATION="${1:-3}"
ROUNDS="${2:-3}"
CONNS="${CONNS:-4}"
THREADS="${THREADS:-1}"
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"

for tool in wrk curl redis-server; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
cargo build --release -q -p sessiond --bin sessiond --example bare_json
BIN="$ROOT/target/release/sessiond"
BARE="$ROOT/target/release/examples/bare_json"

WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

P_REDIS="$(free_port)"
redis-server --port "$P_REDIS" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" &
REDIS_PID=$!; PIDS+=("$REDIS_PID")
for _ in $(seq 100); do redis-cli -p "$P_REDIS" ping >/dev/null 2>&1 && break; sleep 0.05; done

# start NAME DATA_DIR ENV... -> sets PORT_<NAME> and PID_<NAME>
start() {
  local name="$1" dir="$2"; shift 2
  local port; port="$(free_port)"
  env SESSIOND_LISTEN="127.0.0.1:$port" SESSIOND_DATA_DIR="$dir" RUST_LOG=warn "$@" \
    "$BIN" serve >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && [ -f "$dir/admin.key" ] && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
  printf -v "PORT_$name" '%s' "$port"; printf -v "PID_$name" '%s' "$pid"
}
REDIS_ENV=(SESSIOND_STORE=redis "SESSIOND_STORE_URL=redis://127.0.0.1:$P_REDIS" SESSIOND_STORE_PREFIX=bench)
start emb "$WORK/emb"
start cached "$WORK/cached" "${REDIS_ENV[@]}"
# The uncached node shares the cached node's keys (same deployment).
mkdir -p "$WORK/plain" && chmod 700 "$WORK/plain"
cp "$WORK/cached/"{server.keys,signing.keys,api-keys.json,admin.key,.initialized} "$WORK/plain/" 2>/dev/null || true
start plain "$WORK/plain" "${REDIS_ENV[@]}" SESSIOND_NEAR_CACHE=false
P_BARE="$(free_port)"
"$BARE" "127.0.0.1:$P_BARE" 2>"$WORK/bare.err" &
BARE_PID=$!; PIDS+=("$BARE_PID")

# key_and_token PORT DIR -> "VKEY TOKEN"
key_and_token() {
  local port="$1" dir="$2" key vkey token
  key="$(cat "$dir/admin.key")"
  vkey="$(curl -sf -X POST "http://127.0.0.1:$port/v1/api-keys" -H "Authorization: Bearer $key" \
    -H 'content-type: application/json' -d '{"scopes":["sessions:validate"],"name":"bench"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
  token="$(curl -sf -X POST "http://127.0.0.1:$port/v1/sessions" -H "Authorization: Bearer $key" \
    -H 'content-type: application/json' -d '{"subject":"user-1","attributes":{"cart":3}}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
  echo "$vkey $token"
}
read -r EMB_KEY EMB_TOKEN < <(key_and_token "$PORT_emb" "$WORK/emb")
# Created through the cached node: the same Redis and API keys serve both.
read -r RED_KEY RED_TOKEN < <(key_and_token "$PORT_cached" "$WORK/cached")
# The plain node read its API keys at start: give it the new one too.
kill "$PID_plain"; wait "$PID_plain" 2>/dev/null || true
cp "$WORK/cached/api-keys.json" "$WORK/plain/"
start plain "$WORK/plain" "${REDIS_ENV[@]}" SESSIOND_NEAR_CACHE=false

# One script for every target: wrk.port picks the body and the key.
cat >"$WORK/validate.lua" <<LUA
local by_port = {
  ["$PORT_emb"] = {"$EMB_KEY", "$EMB_TOKEN"},
  ["$PORT_cached"] = {"$RED_KEY", "$RED_TOKEN"},
  ["$PORT_plain"] = {"$RED_KEY", "$RED_TOKEN"},
  ["$P_BARE"] = {"$RED_KEY", "$RED_TOKEN"},
}
request = function()
  local kt = by_port[tostring(wrk.port)]
  return wrk.format("POST", wrk.path,
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. kt[1]},
    '{"token":"' .. kt[2] .. '"}')
end
LUA
for port in "$PORT_emb" "$PORT_cached" "$PORT_plain"; do
  kt=("$EMB_KEY" "$EMB_TOKEN"); [ "$port" = "$PORT_emb" ] || kt=("$RED_KEY" "$RED_TOKEN")
  curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/v1/sessions/validate" \
    -H "Authorization: Bearer ${kt[0]}" -H 'content-type: application/json' -d "{\"token\":\"${kt[1]}\"}" ||
    { echo "validate on port $port failed" >&2; exit 1; }
done

LUA="$WORK/validate.lua"
# shellcheck source=../../../scripts/cpu-ratio.sh
. "$ROOT/scripts/cpu-ratio.sh"
V=/v1/sessions/validate
echo "## embedded vs Redis, no near-cache (Redis's CPU counted)"
compare embedded "$PID_emb" "http://127.0.0.1:$PORT_emb$V" redis "$PID_plain,$REDIS_PID" "http://127.0.0.1:$PORT_plain$V"
echo "## embedded vs Redis, near-cache warm (Redis's CPU counted)"
compare embedded "$PID_emb" "http://127.0.0.1:$PORT_emb$V" redis+nc "$PID_cached,$REDIS_PID" "http://127.0.0.1:$PORT_cached$V"
echo "## bare handler vs Redis, near-cache warm"
compare bare "$BARE_PID" "http://127.0.0.1:$P_BARE$V" redis+nc "$PID_cached,$REDIS_PID" "http://127.0.0.1:$PORT_cached$V"
curl -s "http://127.0.0.1:$PORT_cached/metrics" | grep '^sessiond_near_cache' || true
