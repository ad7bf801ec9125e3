#!/usr/bin/env bash
# Bounded load test of POST /v1/sessions/validate against a bare axum JSON
# handler (examples/bare_json.rs), in the same run, on loopback only.
#
# Reports, per target: req/s and p50 latency (from wrk), and the server's
# CPU time per request: the sum over its threads of the first field of
# /proc/<pid>/task/*/schedstat (ns on CPU), read before and after each
# load run, divided by the requests wrk completed. The CPU ratio is the
# figure of the performance budget (goal: validate <= 1.25x bare).
#
# MODE=jwt validates an access JWT (cache warm after the first request)
# instead of an opaque token; MODE=refresh runs POST /v1/tokens/refresh on
# one chain of refresh tokens (one connection: every request rotates; the
# baseline gets the same body shape on its validate route).
#
# Usage: [MODE=validate|jwt|refresh] crates/sessiond/benches/bench-validate.sh [seconds-per-run] [rounds]
# Needs: wrk (apt-get install -y wrk), curl. Bounded: 2 x rounds x seconds.
set -euo pipefail
BENCH_SESSIOND_ENV="${BENCH_SESSIOND_ENV:-}"

DURATION="${1:-3}"
ROUNDS="${2:-11}"
CONNS="${CONNS:-4}"
THREADS="${THREADS:-1}"
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
cargo build --release -q -p sessiond --bin sessiond --example bare_json
BIN="$ROOT/target/release/sessiond"
BARE="$ROOT/target/release/examples/bare_json"

WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_SD="$(free_port)"; P_BARE="$(free_port)"

SESSIOND_LISTEN="127.0.0.1:$P_SD" SESSIOND_DATA_DIR="$WORK/data" RUST_LOG=warn env $BENCH_SESSIOND_ENV \
  "$BIN" serve >"$WORK/sd.out" 2>"$WORK/sd.err" &
SD_PID=$!; PIDS+=("$SD_PID")
"$BARE" "127.0.0.1:$P_BARE" 2>"$WORK/bare.err" &
BARE_PID=$!; PIDS+=("$BARE_PID")

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$P_SD/healthz" >/dev/null 2>&1 && [ -f "$WORK/data/admin.key" ] && break
  sleep 0.1
done
[ -f "$WORK/data/admin.key" ] || { echo "sessiond did not start:" >&2; cat "$WORK/sd.err" >&2; exit 1; }
KEY="$(cat "$WORK/data/admin.key")"
# A validate-scoped key, as a backend would use.
VKEY="$(curl -sf -X POST "http://127.0.0.1:$P_SD/v1/api-keys" -H "Authorization: Bearer $KEY" \
  -H 'content-type: application/json' -d '{"scopes":["sessions:validate"],"name":"bench"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
MODE="${MODE:-validate}"
case "$MODE" in
  validate) FIELD=token; ISSUE='' ;;
  jwt) FIELD=access_token; ISSUE=',"issue":"pair"' ;;
  refresh) FIELD=refresh_token; ISSUE=',"issue":"pair"'; CONNS=1
    VKEY="$(curl -sf -X POST "http://127.0.0.1:$P_SD/v1/api-keys" -H "Authorization: Bearer $KEY" \
      -H 'content-type: application/json' -d '{"scopes":["sessions:write"],"name":"bench"}' |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')" ;;
  *) echo "MODE must be validate, jwt or refresh" >&2; exit 1 ;;
esac
TOKEN="$(curl -sf -X POST "http://127.0.0.1:$P_SD/v1/sessions" -H "Authorization: Bearer $KEY" \
  -H 'content-type: application/json' -d "{\"subject\":\"user-1\",\"attributes\":{\"cart\":3}$ISSUE}" |
  python3 -c "import json,sys; print(json.load(sys.stdin)['$FIELD'])")"

if [ "$MODE" = refresh ]; then
  # The chain goes on across wrk runs: each response's refresh token is
  # kept in a file (client-side work, not counted in the server's CPU).
  echo "$TOKEN" >"$WORK/rt"
  cat >"$WORK/validate.lua" <<LUA
local token
init = function(args)
  local f = io.open("$WORK/rt"); token = f:read("*l"); f:close()
end
request = function()
  local body
  if string.find(wrk.path, "refresh") then body = '{"refresh_token":"' .. token .. '"}'
  else body = '{"token":"' .. token .. '"}' end
  return wrk.format("POST", wrk.path,
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $VKEY"}, body)
end
response = function(status, headers, body)
  local t = string.match(body, '"refresh_token":"(rft_[^"]+)"')
  if t then
    token = t
    local f = io.open("$WORK/rt", "w"); f:write(t); f:close()
  end
end
LUA
else
  cat >"$WORK/validate.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"token":"$TOKEN"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $VKEY"
LUA
fi
# Sanity: both answer 200 to the exact request wrk sends.
[ "$MODE" = refresh ] || curl -sf -o /dev/null -X POST "http://127.0.0.1:$P_SD/v1/sessions/validate" -H "Authorization: Bearer $VKEY" \
  -H 'content-type: application/json' -d "{\"token\":\"$TOKEN\"}"
curl -sf -o /dev/null -X POST "http://127.0.0.1:$P_BARE/v1/sessions/validate" -H "Authorization: Bearer $VKEY" \
  -H 'content-type: application/json' -d "{\"token\":\"$TOKEN\"}"

LUA="$WORK/validate.lua"
# shellcheck source=../../../scripts/cpu-ratio.sh
. "$ROOT/scripts/cpu-ratio.sh"
TARGET_PATH=/v1/sessions/validate
[ "$MODE" = refresh ] && TARGET_PATH=/v1/tokens/refresh
echo "# mode: $MODE"
compare bare "$BARE_PID" "http://127.0.0.1:$P_BARE/v1/sessions/validate" \
  sessiond "$SD_PID" "http://127.0.0.1:$P_SD$TARGET_PATH"
