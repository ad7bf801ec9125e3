# shellcheck shell=bash
# Helpers shared by the load scripts of this directory (bench-postgres.sh,
# bench-embedded-purge.sh). Sourced, not run: `. "$(dirname "$0")/lib-bench.sh"`.
#
# The caller sets, before using them: BIN (the sessiond binary), WORK (a
# temp dir it removes at exit), PIDS (an array of the background processes
# it kills at exit), THREADS and CONNS (wrk's -t and -c for validate load).
# Everything is on loopback.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# start NAME DATA_DIR ENV... -> sets PORT_<NAME> and PID_<NAME>; no
# background purge (the scripts purge when they mean to)
start() {
  local name="$1" dir="$2"; shift 2
  local port; port="$(free_port)"
  env SESSIOND_LISTEN="127.0.0.1:$port" SESSIOND_DATA_DIR="$dir" RUST_LOG=warn \
    SESSIOND_PURGE_INTERVAL_SECS=86400 "$@" \
    "$BIN" serve >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 150); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && [ -f "$dir/admin.key" ] && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$WORK/$name.err" >&2; exit 1; }
  printf -v "PORT_$name" '%s' "$port"; printf -v "PID_$name" '%s' "$pid"
}

# api_key PORT DIR SCOPE -> a new key
api_key() {
  curl -sf -X POST "http://127.0.0.1:$1/v1/api-keys" -H "Authorization: Bearer $(cat "$2/admin.key")" \
    -H 'content-type: application/json' -d "{\"scopes\":[\"$3\"],\"name\":\"bench\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
# live_tokens PORT DIR N: N sessions (subjects live-0..N-1) through the API, one token a line
live_tokens() {
  python3 - "$1" "$(cat "$2/admin.key")" "$3" <<'PY'
import json, sys, urllib.request
port, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
op = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for i in range(n):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/sessions", method="POST",
        data=json.dumps({"subject": f"live-{i}", "attributes": {"cart": 3}}).encode(),
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    print(json.load(op.open(req))["token"])
PY
}

# validate_lua KEY TOKENS_FILE OUT: cycles through the tokens
validate_lua() {
  {
    echo "local key = \"$1\""
    echo "local tokens = {"
    sed 's/.*/  "&",/' "$2"
    echo "}"
    cat <<'LUA'
local i = 0
request = function()
  i = i % #tokens + 1
  return wrk.format("POST", wrk.path,
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key},
    '{"token":"' .. tokens[i] .. '"}')
end
LUA
  } >"$3"
}

# task_cpu_ns PID -> ns on CPU of all the threads of PID (empty if it is gone)
task_cpu_ns() {
  { cat /proc/"$1"/task/*/schedstat 2>/dev/null || true; } | awk '{s += $1} END {if (NR) printf "%d", s}'
}

# to_us "52.00us" | "1.20ms" | "2.00s" -> µs
to_us() {
  awk -v v="$1" 'BEGIN { m = 1; if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000;
    else if (v ~ /s$/) m = 1000000; printf "%.0f", (v + 0) * m }'
}
wrk_field() { # OUT WHAT -> one figure of wrk's report
  case "$2" in
    reqs) awk '/requests in/ {print $1}' <<<"$1" ;;
    rps) awk '/Requests\/sec/ {print $2}' <<<"$1" ;;
    secs) awk '/requests in/ {sub(",", "", $4); print $4}' <<<"$1" ;;
    p50) to_us "$(awk '$1 == "50%" {print $2}' <<<"$1")" ;;
    p99) to_us "$(awk '$1 == "99%" {print $2}' <<<"$1")" ;;
    non2xx) awk '/Non-2xx/ {n = $NF} END {print n + 0}' <<<"$1" ;;
    errors) awk '/Socket errors/ {gsub(",", ""); print "connect " $4 ", read " $6 ", write " $8 ", timeout " $10}' <<<"$1" ;;
  esac
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
ratio() { python3 -c "print(round($1 / $2, 3))"; }

# busy_pct SECS: share of all CPUs busy over SECS (before the load: others' work)
busy_pct() {
  local a b
  a="$(head -1 /proc/stat)"; sleep "$1"; b="$(head -1 /proc/stat)"
  awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x); split(b, y); t = 0;
    for (i = 2; i <= n; i++) t += y[i] - x[i];
    idle = (y[5] - x[5]) + (y[6] - x[6]); printf "%.0f", t ? 100 * (t - idle) / t : 0 }'
}

# lat_row LABEL WRK_OUTPUT: one window's line
lat_row() {
  printf "%-14s %8s %10s %9s %9s %8s %s\n" "$1" "$(wrk_field "$2" secs)" "$(wrk_field "$2" rps)" \
    "$(wrk_field "$2" p50)" "$(wrk_field "$2" p99)" "$(wrk_field "$2" non2xx)" "$(wrk_field "$2" errors)"
}
lat_wrk() { # URL SECS LUA
  wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency --timeout 10s -s "$3" "$1"
}

# purge_windows URL LUA PORT ADMIN_KEY: validate load (URL, LUA) in windows
# of PURGE_WINDOW s: IDLE_WINDOWS idle, then windows while `POST /v1/purge`
# runs on PORT (the last one cut by SIGINT when the purge answers, kept if
# CUT_MIN s or more, 3 by default), then IDLE_WINDOWS idle again. Prints a line per window.
# Sets IDLE_P99S and BUSY_P99S (µs, a window each), PURGE_CODE, PURGE_BODY
# and PURGE_SECS (curl's own time, gives up after PURGE_TIMEOUT s, 600 by
# default). Calls purge_started just before the purge is sent and
# purge_ended once it has answered and its last window is read, if the
# caller defines them (e.g. to read CPU counters).
purge_windows() {
  local url="$1" lua="$2" port="$3" key="$4" out cp wp i secs ws
  IDLE_P99S=(); BUSY_P99S=()
  printf "%-14s %8s %10s %9s %9s %8s %s\n" window seconds "req/s" "p50 us" "p99 us" non-2xx "socket errors"
  lat_wrk "$url" 1 "$lua" >/dev/null
  for i in $(seq "$IDLE_WINDOWS"); do
    out="$(lat_wrk "$url" "$PURGE_WINDOW" "$lua")"; lat_row idle-before "$out"; IDLE_P99S+=("$(wrk_field "$out" p99)")
  done
  ! declare -F purge_started >/dev/null || purge_started
  curl -s -m "${PURGE_TIMEOUT:-600}" -o "$WORK/purge.json" -w '%{http_code} %{time_total}' \
    -X POST "http://127.0.0.1:$port/v1/purge" -H "Authorization: Bearer $key" >"$WORK/purge.code" &
  cp=$!; PIDS+=("$cp")
  while :; do
    # wrk itself in the background, not a subshell running lat_wrk: the
    # SIGINT below must reach wrk (a background subshell ignores it, and
    # the window would run its full length past the purge).
    rm -f "$WORK/purge.wrk"
    ws="$EPOCHREALTIME"
    wrk -t"$THREADS" -c"$CONNS" -d"${PURGE_WINDOW}s" --latency --timeout 10s -s "$lua" "$url" >"$WORK/purge.wrk" &
    wp=$!; PIDS+=("$wp")
    # Polled: `wait -n` does not return for a job that ended before it was
    # called (a purge quicker than starting wrk).
    while kill -0 "$cp" 2>/dev/null && kill -0 "$wp" 2>/dev/null; do sleep 0.02; done
    if kill -0 "$cp" 2>/dev/null; then
      wait "$wp" || true; unset 'PIDS[-1]'
      out="$(cat "$WORK/purge.wrk")"; lat_row during-purge "$out"; BUSY_P99S+=("$(wrk_field "$out" p99)")
      continue
    fi
    # The purge answered: stop this window, kept if it had run CUT_MIN s or
    # more (SIGINT again while wrk lives: one sent as it starts, before it
    # has its handler, may be lost).
    secs="$(awk -v a="$ws" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.2f", b - a}')"
    for i in $(seq 50); do kill -INT "$wp" 2>/dev/null || break; sleep 0.1; done
    wait "$wp" || true; unset 'PIDS[-1]'
    out="$(cat "$WORK/purge.wrk" 2>/dev/null || true)"
    if awk -v s="$secs" -v m="${CUT_MIN:-3}" 'BEGIN {exit !(s + 0 >= m)}' && [ -n "$(wrk_field "$out" p99)" ]; then
      lat_row "purge (last)" "$out"; BUSY_P99S+=("$(wrk_field "$out" p99)")
    else
      printf "%-14s %8s\n" "(cut, dropped)" "${secs}s"
    fi
    break
  done
  wait "$cp" 2>/dev/null || true; unset 'PIDS[-1]'
  ! declare -F purge_ended >/dev/null || purge_ended
  for i in $(seq "$IDLE_WINDOWS"); do
    out="$(lat_wrk "$url" "$PURGE_WINDOW" "$lua")"; lat_row idle-after "$out"; IDLE_P99S+=("$(wrk_field "$out" p99)")
  done
  read -r PURGE_CODE PURGE_SECS <"$WORK/purge.code" || true
  PURGE_CODE="${PURGE_CODE:-000}"; PURGE_SECS="$(printf '%.1f' "${PURGE_SECS:-0}")"
  PURGE_BODY="$(cat "$WORK/purge.json" 2>/dev/null || true)"
}

# p99_summary NAME: the figure, from purge_windows' IDLE_P99S and BUSY_P99S
p99_summary() {
  [ "${#BUSY_P99S[@]}" -gt 0 ] || { echo "$1: the purge was shorter than one window" >&2; return; }
  local mi mb; mi="$(median "${IDLE_P99S[@]}")"; mb="$(median "${BUSY_P99S[@]}")"
  echo "p99 (median of windows): during the purge $mb us, idle $mi us; ratio $(ratio "$mb" "$mi");" \
    "worst purge window / median idle $(ratio "$(printf '%s\n' "${BUSY_P99S[@]}" | sort -g | tail -1)" "$mi")"
}

# sessiond_bin -> the sessiond binary: BENCH_SESSIOND_BIN (one built
# elsewhere, e.g. from a clean checkout) or this checkout's release build
# (built now; CARGO_TARGET_DIR is honoured)
sessiond_bin() {
  if [ -n "${BENCH_SESSIOND_BIN:-}" ]; then
    [ -x "$BENCH_SESSIOND_BIN" ] || { echo "BENCH_SESSIOND_BIN $BENCH_SESSIOND_BIN is not executable" >&2; return 1; }
    echo "$BENCH_SESSIOND_BIN"
  else
    cargo build --release -q -p sessiond --bin sessiond >&2 || return 1
    echo "${CARGO_TARGET_DIR:-$ROOT/target}/release/sessiond"
  fi
}
