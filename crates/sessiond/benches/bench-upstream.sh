#!/usr/bin/env bash
# Bounded load test of the upstream token vault against validate, in the
# same run, on one sessiond, on loopback only.
#
# Measures the performance goal of the vault (docs/upstream.md): server CPU
# per `POST /v1/upstream/{provider}/token` with a fresh grant (no provider
# call: the stored access token is served) within 1.3x that of
# `POST /v1/sessions/validate`. Both targets get the same body,
# {"token": T}, cycling through the same sessions, with the same API key.
#
# One sessiond (embedded redb store, fresh temp data dir, purge every 24 h)
# with provider `idp` configured (token endpoint http://127.0.0.1:9/token,
# which is never called: every grant expires in 24 h, far beyond the
# refresh buffer). SESSIONS sessions (each with a subject) get a grant by
# PUT /v1/upstream/idp. Each round runs validate, then upstream token:
# 1 s of warm-up, then `wrk --latency` for the given seconds; the server's
# CPU per request is the sum over its threads of the first field of
# /proc/<pid>/task/*/schedstat (ns on CPU) after minus before the run,
# over the requests wrk completed (as bench-validate.sh, same helpers in
# scripts/cpu-ratio.sh). Prints per run req/s, p50 and CPU µs/request;
# at the end the median of the per-round CPU ratios upstream/validate
# (the figure of the goal), the ratio of means, and the median per-round
# req/s ratio. Any non-2xx answer or socket error fails the run; before
# and after the load every session's upstream answer is checked to be its
# stored access token, and the sessiond log to hold no refresh attempt.
#
# Usage: crates/sessiond/benches/bench-upstream.sh [seconds-per-run] [rounds]
#   defaults: 3 s, 11 rounds.
# Env: CONNS (wrk connections, 4), THREADS (wrk threads, 1), SESSIONS (256),
#   AT_PAD (extra random characters in each access token, 0: tokens are
#   "at-<i>-<16 hex>"; e.g. 1000 for a JWT-sized token), CARGO_TARGET_DIR.
# Needs: cargo, wrk (apt-get install -y wrk), curl, python3.
# Duration: the release build, ~5 s of setup, then 2 x rounds x (seconds + 1)
#   (defaults: about 90 s).
set -euo pipefail

DURATION="${1:-3}"
ROUNDS="${2:-11}"
CONNS="${CONNS:-4}"
THREADS="${THREADS:-1}"
SESSIONS="${SESSIONS:-256}"
AT_PAD="${AT_PAD:-0}"
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (wrk: apt-get install -y wrk)" >&2; exit 1; }
done
cargo build --release -q -p sessiond --bin sessiond
BIN="$TARGET_DIR/release/sessiond"

WORK="$(mktemp -d)"
SD_PID=
cleanup() {
  if [ -n "$SD_PID" ]; then kill "$SD_PID" 2>/dev/null || true; wait "$SD_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

P_SD="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
SD="http://127.0.0.1:$P_SD"

# Refresh attempts are logged by sessionkit::upstream at info (a failed
# call: "upstream refresh failed; backing off"); everything else at warn.
SESSIOND_LISTEN="127.0.0.1:$P_SD" SESSIOND_DATA_DIR="$WORK/data" \
  SESSIOND_PURGE_INTERVAL_SECS=86400 \
  SESSIOND_UPSTREAM__PROVIDERS__IDP__TOKEN_URL=http://127.0.0.1:9/token \
  SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_ID=bench \
  SESSIOND_UPSTREAM__PROVIDERS__IDP__CLIENT_SECRET=bench-secret \
  RUST_LOG=warn,sessionkit::upstream=info \
  "$BIN" serve >"$WORK/sd.out" 2>"$WORK/sd.err" &
SD_PID=$!

for _ in $(seq 100); do
  curl -sf "$SD/healthz" >/dev/null 2>&1 && [ -f "$WORK/data/admin.key" ] && break
  kill -0 "$SD_PID" 2>/dev/null || break
  sleep 0.1
done
[ -f "$WORK/data/admin.key" ] || { echo "sessiond did not start:" >&2; cat "$WORK/sd.err" >&2; exit 1; }

# Setup and checks over plain HTTP/1.1 (python3, no extra module).
cat >"$WORK/vault.py" <<'PY'
import http.client, json, secrets, sys

port, work, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

def call(method, path, key, body, want):
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != want:
        sys.exit(f"{method} {path}: {r.status} (wanted {want}): {data[:300]!r}")
    return json.loads(data) if data else None

if mode == "setup":
    n, pad = int(sys.argv[4]), int(sys.argv[5])
    admin = open(f"{work}/data/admin.key").read().strip()
    # One key for both targets (same key check on both).
    key = call("POST", "/v1/api-keys", admin,
               {"scopes": ["sessions:validate", "upstream"], "name": "bench"}, 201)["key"]
    tokens, ats = [], []
    for i in range(n):
        t = call("POST", "/v1/sessions", admin, {"subject": f"user-{i}"}, 201)["token"]
        at = f"at-{i}-{secrets.token_hex(8)}" + secrets.token_urlsafe(pad)[:pad]
        call("PUT", "/v1/upstream/idp", key,
             {"token": t, "grant": {"access_token": at, "refresh_token": f"rt-{i}",
                                    "expires_in": 86400, "scope": "openid"}}, 204)
        tokens.append(t); ats.append(at)
    open(f"{work}/key", "w").write(key)
    open(f"{work}/tokens", "w").write("\n".join(tokens) + "\n")
    open(f"{work}/ats", "w").write("\n".join(ats) + "\n")
else:  # check: every session validates, and its upstream token is the stored one
    key = open(f"{work}/key").read().strip()
    tokens = open(f"{work}/tokens").read().split()
    ats = open(f"{work}/ats").read().split()
    for t, at in zip(tokens, ats):
        call("POST", "/v1/sessions/validate", key, {"token": t}, 200)
        got = call("POST", "/v1/upstream/idp/token", key, {"token": t}, 200)
        if got["access_token"] != at or got.get("scope") != "openid":
            sys.exit("upstream token: not the stored access token (refreshed?)")
    print(f"checked {len(tokens)} sessions: validate 200, upstream token 200 = stored token")
PY
python3 "$WORK/vault.py" "$P_SD" "$WORK" setup "$SESSIONS" "$AT_PAD"
python3 "$WORK/vault.py" "$P_SD" "$WORK" check
KEY="$(cat "$WORK/key")"

# wrk: every request takes the next session token (one Lua state per wrk
# thread, each cycling through all of them).
cat >"$WORK/cycle.lua" <<LUA
local tokens = {}
for line in io.lines("$WORK/tokens") do tokens[#tokens + 1] = line end
local i = 0
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer $KEY"}
request = function()
  i = i % #tokens + 1
  return wrk.format("POST", nil, headers, '{"token":"' .. tokens[i] .. '"}')
end
LUA
LUA="$WORK/cycle.lua"
# shellcheck source=../../../scripts/cpu-ratio.sh
. "$ROOT/scripts/cpu-ratio.sh"

# run NAME URL -> "rps p50 cpu_ns_per_req"; fails on any non-2xx answer or
# socket error.
run() {
  local name="$1" url="$2" out before after reqs rps p50
  wrk -t"$THREADS" -c"$CONNS" -d1s -s "$LUA" "$url" >"$WORK/warm"
  if grep -q "Non-2xx\|Socket errors" "$WORK/warm"; then
    echo "$name (warm-up): errors" >&2; cat "$WORK/warm" >&2; exit 1
  fi
  before="$(cpu_ns "$SD_PID")"
  out="$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$LUA" "$url")"
  after="$(cpu_ns "$SD_PID")"
  if echo "$out" | grep -q "Non-2xx\|Socket errors"; then
    echo "$name: non-2xx answers or socket errors" >&2; echo "$out" >&2; exit 1
  fi
  reqs="$(echo "$out" | awk '/requests in/ {print $1}')"
  [ "${reqs:-0}" -gt 0 ] || { echo "$name: no requests completed" >&2; echo "$out" >&2; exit 1; }
  rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
  p50="$(echo "$out" | awk '$1=="50%" {print $2}')"
  echo "$rps $p50 $(( (after - before) / reqs ))"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "# $SESSIONS sessions with a fresh grant each; wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds, $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %-9s %12s %10s %12s\n" round target "req/s" p50 "cpu us/req"
cpu_ratios=(); rps_ratios=(); sum_v=0; sum_u=0
for r in $(seq "$ROUNDS"); do
  read -r rps_v p50_v cpu_v < <(run validate "$SD/v1/sessions/validate")
  read -r rps_u p50_u cpu_u < <(run upstream "$SD/v1/upstream/idp/token")
  if [ -z "${cpu_v:-}" ] || [ -z "${cpu_u:-}" ]; then echo "round $r failed" >&2; exit 1; fi
  printf "%-6s %-9s %12s %10s %12s\n" \
    "$r" validate "$rps_v" "$p50_v" "$(awk "BEGIN {printf \"%.2f\", $cpu_v/1000}")" \
    "$r" upstream "$rps_u" "$p50_u" "$(awk "BEGIN {printf \"%.2f\", $cpu_u/1000}")"
  sum_v=$((sum_v + cpu_v)); sum_u=$((sum_u + cpu_u))
  cpu_ratios+=("$(awk "BEGIN {printf \"%.3f\", $cpu_u/$cpu_v}")")
  rps_ratios+=("$(awk "BEGIN {printf \"%.3f\", $rps_u/$rps_v}")")
done
echo "per-round CPU ratio (upstream/validate): ${cpu_ratios[*]}"
echo "per-round req/s ratio (upstream/validate): ${rps_ratios[*]}"
echo "mean CPU per request: validate $((sum_v / ROUNDS)) ns, upstream $((sum_u / ROUNDS)) ns, ratio of means $(awk "BEGIN {printf \"%.3f\", $sum_u/$sum_v}")"
echo "median req/s ratio (upstream/validate): $(printf '%s\n' "${rps_ratios[@]}" | median)"
MED="$(printf '%s\n' "${cpu_ratios[@]}" | median)"
echo "median CPU ratio (upstream/validate): $MED (goal <= 1.3: $(awk "BEGIN {print ($MED <= 1.3) ? \"met\" : \"NOT met\"}"))"

# The provider was never called: answers are still the stored tokens, and
# no refresh attempt was logged.
python3 "$WORK/vault.py" "$P_SD" "$WORK" check
if grep -qi "upstream refresh\|upstream refused" "$WORK/sd.err"; then
  echo "sessiond attempted an upstream refresh:" >&2; grep -i "upstream" "$WORK/sd.err" >&2; exit 1
fi
echo "sessiond log: no upstream refresh attempt"
