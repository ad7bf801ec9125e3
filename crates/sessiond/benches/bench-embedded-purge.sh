#!/usr/bin/env bash
# Bounded load test, on loopback only: validate p99 latency during a purge of
# N_EXPIRED expired sessions on the embedded (redb) store, against idle, in
# one run (the hardening goal: within 2x of idle). The same method as the
# PostgreSQL figures (bench-postgres.sh, section 3).
#
# Starts one sessiond on the embedded store in a temp data dir (no
# background purge). Creates N_EXPIRED anonymous sessions through the API
# (`POST /v1/sessions` with idle_timeout_secs 1, attributes {"cart":3}; wrk
# with CREATE_CONNS connections, exactly N_EXPIRED creates, then it stops),
# waits until every one is past its idle deadline, then creates 256 live
# sessions (subjects live-0..255, the policy's timeouts) that every validate
# cycles through. Then validate load (wrk -t1 -c4) in windows of
# PURGE_WINDOW s: IDLE_WINDOWS idle, then windows while one
# `POST /v1/purge` runs on the same node (the engine purges in store
# batches of 10,000 until none is left, each batch one redb transaction
# with its fsync; the last window is cut by SIGINT when the purge answers,
# and kept if CUT_MIN s or more), then IDLE_WINDOWS idle again. The
# windows are shorter than bench-postgres.sh's 8 s because this purge is
# quicker (6-15 s for 1M here, against 73 s on PostgreSQL): 2 s windows
# give it three or more. Prints each window, the purge's answer and time, /v1/stats before and after (the purge must remove the
# expired sessions and leave the 256), and the median p99 of the purge
# windows against the median p99 of the idle ones, and the worst purge
# window against that same idle median. Exits non-zero if the purge failed
# or left anything but the 256 live sessions.
#
# Usage: crates/sessiond/benches/bench-embedded-purge.sh
# Env: N_EXPIRED (1000000), CONNS (4), THREADS (1), CREATE_CONNS (64),
# CREATE_TIMEOUT (600: wrk gives up creating after that many s),
# PURGE_WINDOW (2), IDLE_WINDOWS (4), CUT_MIN (1), PURGE_TIMEOUT (600: curl
# gives up on the purge), BENCH_SESSIOND_BIN (a sessiond binary to use
# instead of building this checkout's), BENCH_SESSIOND_ENV (more
# environment for sessiond, VAR=value separated by spaces, e.g.
# "SESSIOND_POLICY__TOUCH_INTERVAL_SECS=1"), TMPDIR (where the temp data dir
# goes: ~180 MB of redb file for 1M sessions).
# Needs: wrk, curl, python3; lib-bench.sh beside it (sourced).
# Bounded: the creates (~1.5 min for 1M here; at most CREATE_TIMEOUT), 2 s
# for them to expire, the 256 live sessions (~2 s), 2 x IDLE_WINDOWS x
# PURGE_WINDOW, and the purge (at most PURGE_TIMEOUT) plus one window;
# about 2 minutes with defaults.
set -euo pipefail
N_EXPIRED="${N_EXPIRED:-1000000}"
LIVE=256
CONNS="${CONNS:-4}"
THREADS="${THREADS:-1}"
CREATE_CONNS="${CREATE_CONNS:-64}"
CREATE_TIMEOUT="${CREATE_TIMEOUT:-600}"
PURGE_WINDOW="${PURGE_WINDOW:-2}"
IDLE_WINDOWS="${IDLE_WINDOWS:-4}"
CUT_MIN="${CUT_MIN:-1}"
PURGE_TIMEOUT="${PURGE_TIMEOUT:-600}"
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"
. "$ROOT/crates/sessiond/benches/lib-bench.sh"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
[ "$N_EXPIRED" -ge 1 ] || { echo "N_EXPIRED must be at least 1" >&2; exit 1; }
BIN="$(sessiond_bin)"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "# machine busy before the load (others' work): $(busy_pct 3)% of $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# The anonymous cap (10,000,000 by default) counts expired sessions until
# they are purged: raised only if N_EXPIRED would reach it.
ANON_CAP=$(( N_EXPIRED + 100000 > 10000000 ? N_EXPIRED + 100000 : 10000000 ))
BENCH_SESSIOND_ENV="${BENCH_SESSIOND_ENV:-}"
[ -z "$BENCH_SESSIOND_ENV" ] || echo "# sessiond environment: $BENCH_SESSIOND_ENV"
# shellcheck disable=SC2086 # VAR=value words
start emb "$WORK/emb" SESSIOND_POLICY__MAX_ANONYMOUS_SESSIONS="$ANON_CAP" $BENCH_SESSIOND_ENV
URL="http://127.0.0.1:$PORT_emb"
ADMIN="$(cat "$WORK/emb/admin.key")"
WKEY="$(api_key "$PORT_emb" "$WORK/emb" sessions:write)"
VKEY="$(api_key "$PORT_emb" "$WORK/emb" sessions:validate)"

# stats -> "live L, anonymous A, subjects S" (GET /v1/stats, exact on this store)
stats() {
  curl -sf "$URL/v1/stats" -H "Authorization: Bearer $ADMIN" |
    python3 -c 'import json,sys; s=json.load(sys.stdin); print("live %d, anonymous %d, subjects %d" % (s["live"], s["anonymous"], s["subjects"]))'
}
stat_field() { awk -v f="$2" -F', ' '{for (i = 1; i <= NF; i++) {split($i, a, " "); if (a[1] == f) print a[2]}}' <<<"$1"; }
rss_mb() { awk '/^VmRSS/ {printf "%d", $2 / 1024}' "/proc/$PID_emb/status"; }
db_mb() { du -sm "$WORK/emb" | cut -f1; }

# expired_lua KEY N DONE_FILE OUT: N creates of anonymous sessions with a
# 1 s idle timeout (for one wrk thread); once N are sent, connections ask
# GET /healthz until the N answers are in, then the thread stops and writes
# DONE_FILE (wrk itself runs until its -d or a SIGINT). Counts answers
# other than 201. wrk 4 calls request() once more, before the run, only to
# check that the request parses (hence sent starts at -1); the store's
# count is checked afterwards all the same.
expired_lua() {
  {
    echo "local key, n, done_file = \"$1\", $2, \"$3\""
    cat <<'LUA'
local sent, created, failed = -1, 0, 0
local create = wrk.format("POST", "/v1/sessions",
  {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key},
  '{"idle_timeout_secs":1,"attributes":{"cart":3}}')
local health = wrk.format("GET", "/healthz")
request = function()
  if sent < n then
    sent = sent + 1
    return create
  end
  return health
end
response = function(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status ~= 200 then
    failed = failed + 1
  end
  if created + failed >= n then
    local f = io.open(done_file, "w")
    if f then f:write(created, " ", failed, "\n"); f:close() end
    wrk.thread:stop()
  end
end
LUA
  } >"$4"
}

echo "## $N_EXPIRED expired anonymous sessions through the API (wrk -t1 -c$CREATE_CONNS, idle_timeout_secs 1)"
expired_lua "$WKEY" "$N_EXPIRED" "$WORK/created" "$WORK/expired.lua"
t0="$(now_ms)"
wrk -t1 -c"$CREATE_CONNS" -d"${CREATE_TIMEOUT}s" --timeout 30s -s "$WORK/expired.lua" "$URL/v1/sessions" \
  >"$WORK/create.wrk" &
cw=$!; PIDS+=("$cw")
while [ ! -e "$WORK/created" ] && kill -0 "$cw" 2>/dev/null; do sleep 0.1; done
t1="$(now_ms)"
kill -INT "$cw" 2>/dev/null || true; wait "$cw" || true; unset 'PIDS[-1]'
out="$(cat "$WORK/create.wrk")"
[ -e "$WORK/created" ] || { echo "the creates did not finish within $CREATE_TIMEOUT s" >&2; }
before="$(stats)"
EXPIRED="$(stat_field "$before" anonymous)"
echo "created in $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) s, $(( EXPIRED * 1000 / (t1 - t0 + 1) ))/s ($(wrk_field "$out" reqs) requests: the creates and a few closing health checks;" \
  "non-2xx $(wrk_field "$out" non2xx); socket errors: $(wrk_field "$out" errors)); stats: $before"
# wrk must have written DONE_FILE, with every create answered 201, and
# the store must count them (a few more, if wrk did not make the check
# call above, are purged and counted all the same).
if [ "$(wrk_field "$out" non2xx)" != 0 ] || [ "$EXPIRED" -lt "$N_EXPIRED" ] ||
  [ "$EXPIRED" -gt $((N_EXPIRED + CREATE_CONNS)) ]; then
  echo "expected $N_EXPIRED anonymous sessions, the store counts $EXPIRED" >&2; echo "$out" >&2; exit 1
fi
sleep 2   # every idle deadline (1 s after its create) is now past

live_tokens "$PORT_emb" "$WORK/emb" "$LIVE" >"$WORK/live.tokens"
validate_lua "$VKEY" "$WORK/live.tokens" "$WORK/validate.lua"
V="$URL/v1/sessions/validate"
curl -sf -o /dev/null -X POST "$V" -H "Authorization: Bearer $VKEY" -H 'content-type: application/json' \
  -d "{\"token\":\"$(head -1 "$WORK/live.tokens")\"}" || { echo "validate failed" >&2; exit 1; }
before="$(stats)"
echo "with the $LIVE live sessions: $before; sessiond RSS $(rss_mb) MB, data dir $(db_mb) MB"

purge_started() { CPU0="$(task_cpu_ns "$PID_emb")"; }
purge_ended() { CPU1="$(task_cpu_ns "$PID_emb")"; }
echo "## purge of $EXPIRED expired sessions under validate load (wrk -t$THREADS -c$CONNS, $LIVE tokens cycled), embedded store"
purge_windows "$V" "$WORK/validate.lua" "$PORT_emb" "$ADMIN"
after="$(stats)"
purged="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1] or "{}").get("purged", ""))' "$PURGE_BODY" 2>/dev/null || true)"
echo "POST /v1/purge: HTTP $PURGE_CODE $PURGE_BODY in $PURGE_SECS s" \
  "($(python3 -c "s = float('$PURGE_SECS'); print(round(${purged:-0} / s) if s else '-')") rows/s);" \
  "sessiond CPU meanwhile (validate load included) $(( (CPU1 - CPU0) / 1000000 )) ms"
echo "stats before: $before"
echo "stats after:  $after; sessiond RSS $(rss_mb) MB, data dir $(db_mb) MB"
p99_summary embedded
echo "# machine busy after the run: $(busy_pct 3)% of $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
fail=0
[ "$PURGE_CODE" = 200 ] || { echo "the purge failed (HTTP $PURGE_CODE)" >&2; fail=1; }
[ "$purged" = "$EXPIRED" ] || { echo "the purge removed '$purged' records, not $EXPIRED" >&2; fail=1; }
[ "$(stat_field "$after" live)" = "$LIVE" ] && [ "$(stat_field "$after" anonymous)" = 0 ] ||
  { echo "after the purge the store should hold the $LIVE live sessions only" >&2; fail=1; }
echo "# done in $SECONDS s"
exit "$fail"
