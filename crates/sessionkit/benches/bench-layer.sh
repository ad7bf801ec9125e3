#!/usr/bin/env bash
# Bounded load test of an axum handler behind SessionLayer (reading a live
# session from its cookie, MemoryStore) against the same app without the
# layer, in one run, on loopback only (docs/benchmarks.md: server CPU per request
# at most 1.08x the bare handler's).
#
# Per target: req/s and p50 (wrk), and server CPU per request: the sum over
# its threads of the first field of /proc/<pid>/task/*/schedstat (ns on
# CPU), read before and after each load run, over the requests wrk
# completed. The figure is the median of the per-round CPU ratios.
#
# Both servers run on tokio's multi-thread runtime; with
# LAYER_BENCH_RUNTIME=current_thread both run on one thread, which takes
# the work-stealing wake-ups (kernel time that grows with the work per
# request) out of the comparison.
#
# Usage: crates/sessionkit/benches/bench-layer.sh [seconds-per-run] [rounds]
# Needs: wrk (apt-get install -y wrk), curl, python3. Bounded: 2 x rounds x (seconds + 1).
set -euo pipefail

DURATION="${1:-3}"
ROUNDS="${2:-11}"
CONNS="${CONNS:-4}"
THREADS="${THREADS:-1}"
UA="Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 1; }
cargo build --release -q -p sessionkit --example layer_bench
BIN="$ROOT/target/release/examples/layer_bench"

WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P_LAYER="$(free_port)"; P_BARE="$(free_port)"
"$BIN" layer "127.0.0.1:$P_LAYER" 2>"$WORK/layer.err" &
LAYER_PID=$!; PIDS+=("$LAYER_PID")
"$BIN" bare "127.0.0.1:$P_BARE" 2>"$WORK/bare.err" &
BARE_PID=$!; PIDS+=("$BARE_PID")
for port in "$P_LAYER" "$P_BARE"; do
  for _ in $(seq 100); do
    curl -sf -A "$UA" "http://127.0.0.1:$port/page" >/dev/null 2>&1 && break
    sleep 0.1
  done
done

COOKIE="$(curl -sf -D - -o /dev/null -X POST -A "$UA" -H 'sec-fetch-site: same-origin' \
  "http://127.0.0.1:$P_LAYER/start" | tr -d '\r' |
  awk -F'[ ;]' 'tolower($1)=="set-cookie:" && $2 ~ /^__Host-session=ses_/ {c=$2} END {print c}')"
[ -n "$COOKIE" ] || { echo "no session cookie from /start" >&2; exit 1; }

cat >"$WORK/page.lua" <<LUA
wrk.headers["Cookie"] = "$COOKIE"
wrk.headers["User-Agent"] = "$UA"
LUA
# Sanity: both answer the same line, and the layer's from the session.
want="hello user-1 (3 visits)"
got="$(curl -sf -A "$UA" -H "Cookie: $COOKIE" "http://127.0.0.1:$P_LAYER/page")"
[ "$got" = "$want" ] || { echo "layer answered '$got', not '$want'" >&2; exit 1; }
got="$(curl -sf -A "$UA" "http://127.0.0.1:$P_BARE/page")"
[ "$got" = "$want" ] || { echo "bare answered '$got'" >&2; exit 1; }

LUA="$WORK/page.lua"
# shellcheck source=../../../scripts/cpu-ratio.sh
. "$ROOT/scripts/cpu-ratio.sh"
compare bare "$BARE_PID" "http://127.0.0.1:$P_BARE/page" layer "$LAYER_PID" "http://127.0.0.1:$P_LAYER/page"
