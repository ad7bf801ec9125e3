#!/usr/bin/env bash
# Bounded load test of sessiond on PostgreSQL against the embedded store, in
# one run, on loopback only (the PostgreSQL store's performance goals).
#
# Starts sessiond on the embedded store, and two sessiond on one fresh
# PostgreSQL schema (bench_pg_<pid>): one with the near-cache (the default)
# and one without, sharing keys. 256 live sessions per store are created
# through the API; every validate run cycles through them. Then:
#
# 1. Validate over HTTP (wrk -t1 -c4), server CPU per request (as in
#    scripts/cpu-ratio.sh): sessiond's threads, plus, for the PostgreSQL
#    targets, PostgreSQL's: the cluster's own processes (postmaster,
#    checkpointer, WAL writer, ...) and the backends serving that sessiond
#    (matched by client port), read before and after each run. Other
#    clients of a shared cluster are not counted; their CPU meanwhile is
#    printed ("other ms": for the embedded store, the whole cluster's).
#    Per round the embedded store, then the target; the figure is the
#    median of the per-round ratios. Pairs: embedded vs PostgreSQL without
#    near-cache, embedded vs PostgreSQL near-cache warm.
# 2. Creates/s with 64 connections (each create a new subject), the
#    embedded store (fsync) and PostgreSQL (synchronous_commit as the server
#    has it, `on` by default) alternately, rounds of CREATE_SECS. Then, in
#    one backend and one rolled-back transaction, sk_create and its two
#    SQL-language helpers timed per call (each helper also inline).
# 3. Purge under load: N_EXPIRED anonymous sessions, already expired (idle
#    deadline passed), bulk-inserted with SQL into the schema's tables
#    (sessions, and the counters they are counted in), then VACUUM ANALYZE
#    (the cluster may run without autovacuum). Validate load (wrk -c4) on
#    one node in windows of PURGE_WINDOW s: IDLE_WINDOWS idle, then windows
#    while `POST /v1/purge` runs on that same node (the engine's purge,
#    store batches of 500; the last window cut by SIGINT when the purge
#    answers), then IDLE_WINDOWS idle again. Median p99 of the purge
#    windows against median p99 of the idle ones. Once on the node without
#    near-cache (every validate reads PostgreSQL), once on the near-cache
#    node.
# 4. (SUBJECT_PROBE=1, the default) The same rows with subjects
#    (N_EXPIRED / 4 subjects): one `POST /v1/purge` (bounded by the store's
#    2 s statement timeout), and one `sk_purge` of 50 rows timed in psql
#    and rolled back.
#
# Usage: crates/sessiond/benches/bench-postgres.sh [seconds-per-run] [rounds]
# Env: PG_URL (default postgres://postgres@127.0.0.1:5432/test; loopback
# only; the role must be able to create schemas), N_EXPIRED (1000000),
# CONNS (4), CREATE_CONNS (64), CREATE_SECS (5), CREATE_ROUNDS (3),
# PURGE_WINDOW (8), IDLE_WINDOWS (2), SUBJECT_PROBE (1), BENCH_SESSIOND_BIN (a
# sessiond binary to use instead of building this checkout's).
# Needs: wrk, curl, psql, python3, pgrep, ss, and that PostgreSQL running.
# Bounded: validate 4 x rounds x (seconds + 1), creates 2 x CREATE_ROUNDS x
# (CREATE_SECS + 1), each purge phase the insert (~20-40 s), 2 x
# IDLE_WINDOWS x PURGE_WINDOW and the purge (curl gives up after 600 s),
# the probe ~1 min; about 7-8 minutes with defaults.
set -euo pipefail
DURATION="${1:-3}"
ROUNDS="${2:-5}"
CONNS="${CONNS:-4}"
THREADS="${THREADS:-1}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
N_EXPIRED="${N_EXPIRED:-1000000}"
LIVE=256
CREATE_CONNS="${CREATE_CONNS:-64}"
CREATE_SECS="${CREATE_SECS:-5}"
CREATE_ROUNDS="${CREATE_ROUNDS:-3}"
PURGE_WINDOW="${PURGE_WINDOW:-8}"
IDLE_WINDOWS="${IDLE_WINDOWS:-2}"
SUBJECT_PROBE="${SUBJECT_PROBE:-1}"
SPLIT_N=3000
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$ROOT"

for tool in wrk curl psql python3 pgrep ss; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
PG_HOST="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).hostname or "")' "$PG_URL")"
PG_PORT="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).port or 5432)' "$PG_URL")"
case "$PG_HOST" in
  127.0.0.1 | localhost | ::1) ;;
  *) echo "PG_URL must point at loopback (got host '$PG_HOST')" >&2; exit 1 ;;
esac
export PGCONNECT_TIMEOUT=5
PSQL=(psql "$PG_URL" -X -q -v ON_ERROR_STOP=1)
PG_VERSION="$("${PSQL[@]}" -Atc 'SHOW server_version_num' 2>&1)" ||
  { echo "PostgreSQL is not reachable at $PG_URL: $PG_VERSION" >&2; exit 1; }
[ "$PG_VERSION" -ge 150000 ] || { echo "PostgreSQL 15 or later needed (server_version_num $PG_VERSION)" >&2; exit 1; }
[ -n "$(pgrep -x postgres)" ] || { echo "no local postgres process to count CPU of" >&2; exit 1; }
if [ -n "${BENCH_SESSIOND_BIN:-}" ]; then
  BIN="$BENCH_SESSIOND_BIN"   # a binary built elsewhere (e.g. from a clean checkout)
  [ -x "$BIN" ] || { echo "BENCH_SESSIOND_BIN $BIN is not executable" >&2; exit 1; }
else
  cargo build --release -q -p sessiond --bin sessiond
  BIN="$ROOT/target/release/sessiond"
fi

SCHEMA="bench_pg_$$"
[ -z "$("${PSQL[@]}" -Atc "SELECT 1 FROM pg_namespace WHERE nspname = '$SCHEMA'")" ] ||
  { echo "schema $SCHEMA exists already" >&2; exit 1; }
WORK="$(mktemp -d)"
PIDS=()
SCHEMA_MADE=0
cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  if [ "$SCHEMA_MADE" = 1 ]; then
    "${PSQL[@]}" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 ||
      echo "could not drop schema $SCHEMA" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# start NAME DATA_DIR ENV... -> sets PORT_<NAME> and PID_<NAME>
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
PG_ENV=(SESSIOND_STORE=postgres "SESSIOND_STORE_URL=$PG_URL" "SESSIOND_STORE_PREFIX=$SCHEMA")
start emb "$WORK/emb"
SCHEMA_MADE=1
start nc "$WORK/nc" "${PG_ENV[@]}"
[ -n "$("${PSQL[@]}" -Atc "SELECT 1 FROM pg_namespace WHERE nspname = '$SCHEMA'")" ] ||
  { echo "sessiond did not create schema $SCHEMA" >&2; exit 1; }

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
EMB_VKEY="$(api_key "$PORT_emb" "$WORK/emb" sessions:validate)"
EMB_WKEY="$(api_key "$PORT_emb" "$WORK/emb" sessions:write)"
PG_VKEY="$(api_key "$PORT_nc" "$WORK/nc" sessions:validate)"
PG_WKEY="$(api_key "$PORT_nc" "$WORK/nc" sessions:write)"
live_tokens "$PORT_emb" "$WORK/emb" "$LIVE" >"$WORK/emb.tokens"
live_tokens "$PORT_nc" "$WORK/nc" "$LIVE" >"$WORK/pg.tokens"
# The node without near-cache: same deployment (keys and API keys copied).
mkdir -p "$WORK/plain" && chmod 700 "$WORK/plain"
cp -a "$WORK/nc/." "$WORK/plain/"
start plain "$WORK/plain" "${PG_ENV[@]}" SESSIOND_NEAR_CACHE=false

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
# create_lua KEY OUT: every request a new subject
create_lua() {
  {
    echo "local key = \"$1\""
    cat <<'LUA'
local n, tag = 0, "x"
init = function(args)
  tag = (args[1] or "x") .. "-" .. os.time() .. "-" .. (tostring({}):match("0x(%x+)") or "0")
end
request = function()
  n = n + 1
  return wrk.format("POST", wrk.path,
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key},
    '{"subject":"c-' .. tag .. '-' .. n .. '","attributes":{"cart":3}}')
end
LUA
  } >"$2"
}
validate_lua "$EMB_VKEY" "$WORK/emb.tokens" "$WORK/v_emb.lua"
validate_lua "$PG_VKEY" "$WORK/pg.tokens" "$WORK/v_pg.lua"
create_lua "$EMB_WKEY" "$WORK/c_emb.lua"
create_lua "$PG_WKEY" "$WORK/c_pg.lua"
V=/v1/sessions/validate
for t in "emb $EMB_VKEY emb" "nc $PG_VKEY pg" "plain $PG_VKEY pg"; do
  read -r node key tf <<<"$t"
  port_var="PORT_$node"
  curl -sf -o /dev/null -X POST "http://127.0.0.1:${!port_var}$V" -H "Authorization: Bearer $key" \
    -H 'content-type: application/json' -d "{\"token\":\"$(head -1 "$WORK/$tf.tokens")\"}" ||
    { echo "validate on $node failed" >&2; exit 1; }
done

# pg_pids SD_PID: the PostgreSQL cluster's own processes (postmaster,
# checkpointer, WAL writer, ...) and the backends serving that sessiond
# (found by their client port, which a backend shows in its title).
pg_pids() {
  local ports p cmd
  ports="$(ss -Htnp state established "( dport = :$PG_PORT )" 2>/dev/null |
    awk -v me="pid=$1," 'index($0, me) {n = split($3, a, ":"); print a[n]}')"
  for p in $(pgrep -x postgres || true); do
    cmd="$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" || continue
    if [[ "$cmd" =~ \(([0-9]+)\)\ [a-zA-Z]+ ]]; then
      grep -qx "${BASH_REMATCH[1]}" <<<"$ports" && echo "$p"
    elif [[ "$cmd" != *"[local]"* ]]; then
      echo "$p"
    fi
  done
}
# cpu_snap PID[,PID...] -> "pid ns" a line: ns on CPU of all the threads of
# each process. "pg:SD_PID" stands for pg_pids SD_PID; "pg:all" for every
# process of the cluster plus the postmaster's reaped children (backends
# that ended), to tell how much CPU other clients of the cluster used.
CLK_TCK="$(getconf CLK_TCK)"
cpu_snap() {
  local p list=() pm
  for p in ${1//,/ }; do
    case "$p" in
      pg:all)
        mapfile -t -O "${#list[@]}" list < <(pgrep -x postgres || true)
        pm="$(pgrep -o -x postgres || true)"
        [ -z "$pm" ] || awk -v t="$CLK_TCK" '{printf "reaped %d\n", ($16 + $17) * 1e9 / t}' "/proc/$pm/stat" 2>/dev/null || true ;;
      pg:*) mapfile -t -O "${#list[@]}" list < <(pg_pids "${p#pg:}") ;;
      *) list+=("$p") ;;
    esac
  done
  for p in "${list[@]}"; do
    { cat /proc/"$p"/task/*/schedstat 2>/dev/null || true; } |
      awk -v p="$p" '{s += $1} END {if (NR) printf "%s %d\n", p, s}'
  done
}
# cpu_delta BEFORE AFTER -> ns on CPU between two snapshots, over the
# processes of AFTER (one that appeared in between counts whole; the
# "reaped" line holds the CPU of those that ended)
cpu_delta() {
  awk 'NR == FNR {b[$1] = $2; next} {s += $2 - (($1 in b) ? b[$1] : 0)} END {printf "%d", s}' \
    <(echo "$1") <(echo "$2")
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

# measure NAME SD_PID WITH_PG(0|1) CONNS SECS LUA URL [WRK_ARGS...]
#   -> "NAME rps p50_us p99_us cpu_ns/req sessiond_ns/req postgres_ns/req
#       other_ms", other_ms: CPU of the cluster's other clients in the run
measure() {
  local name="$1" sd="$2" withpg="$3" c="$4" secs="$5" lua="$6" url="$7"; shift 7
  wrk -t"$THREADS" -c"$c" -d1s -s "$lua" "$url" -- "$@" >/dev/null
  local b_sd a_sd b_pg="" a_pg="" b_all a_all out reqs sd_ns pg_ns=0 pg_total=0
  b_all="$(cpu_snap pg:all)"; b_sd="$(cpu_snap "$sd")"; [ "$withpg" = 0 ] || b_pg="$(cpu_snap "pg:$sd")"
  out="$(wrk -t"$THREADS" -c"$c" -d"${secs}s" --latency --timeout 10s -s "$lua" "$url" -- "$@")"
  a_sd="$(cpu_snap "$sd")"; [ "$withpg" = 0 ] || a_pg="$(cpu_snap "pg:$sd")"; a_all="$(cpu_snap pg:all)"
  if [ "$(wrk_field "$out" non2xx)" != 0 ]; then echo "$name: non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
  reqs="$(wrk_field "$out" reqs)"
  sd_ns=$(( $(cpu_delta "$b_sd" "$a_sd") / reqs ))
  [ "$withpg" = 0 ] || { pg_total="$(cpu_delta "$b_pg" "$a_pg")"; pg_ns=$(( pg_total / reqs )); }
  echo "$name $(wrk_field "$out" rps) $(wrk_field "$out" p50) $(wrk_field "$out" p99)" \
    "$((sd_ns + pg_ns)) $sd_ns $pg_ns $(( ($(cpu_delta "$b_all" "$a_all") - pg_total) / 1000000 ))"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
ratio() { python3 -c "print(round($1 / $2, 3))"; }
HDR="%-6s %-10s %12s %9s %9s %12s %12s %12s %9s\n"

# compare_cpu BASE_NAME BASE_PID BASE_URL BASE_LUA TARGET_NAME TARGET_PID TARGET_URL TARGET_LUA
# (the target's PostgreSQL processes counted)
compare_cpu() {
  local bn="$1" bp="$2" bu="$3" bl="$4" tn="$5" tp="$6" tu="$7" tl="$8"
  echo "# wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds, $(nproc) CPUs, $LIVE tokens cycled"
  printf "$HDR" round target "req/s" "p50 us" "p99 us" "cpu ns/req" "sessiond" "postgres" "other ms"
  local ratios=() sdratios=() sum_b=0 sum_t=0 r m1 m2 n1 rps1 p501 p991 c1 s1 g1 o1 n2 rps2 p502 p992 c2 s2 g2 o2
  for r in $(seq "$ROUNDS"); do
    m1="$(measure "$bn" "$bp" 0 "$CONNS" "$DURATION" "$bl" "$bu")"
    m2="$(measure "$tn" "$tp" 1 "$CONNS" "$DURATION" "$tl" "$tu")"
    read -r n1 rps1 p501 p991 c1 s1 g1 o1 <<<"$m1"
    read -r n2 rps2 p502 p992 c2 s2 g2 o2 <<<"$m2"
    printf "$HDR" "$r" "$n1" "$rps1" "$p501" "$p991" "$c1" "$s1" "$g1" "$o1" \
      "$r" "$n2" "$rps2" "$p502" "$p992" "$c2" "$s2" "$g2" "$o2"
    sum_b=$((sum_b + c1)); sum_t=$((sum_t + c2))
    ratios+=("$(ratio "$c2" "$c1")"); sdratios+=("$(ratio "$s2" "$s1")")
  done
  echo "per-round CPU ratio ($tn/$bn, postgres counted): ${ratios[*]}"
  echo "median ratio: $(median "${ratios[@]}")"
  echo "sessiond alone, per-round ratio: ${sdratios[*]} (median $(median "${sdratios[@]}"))"
  echo "mean CPU per request: $bn $((sum_b / ROUNDS)) ns, $tn $((sum_t / ROUNDS)) ns, ratio of means $(ratio "$sum_t" "$sum_b")"
}

# busy_pct SECS: share of all CPUs busy over SECS (before the load: others' work)
busy_pct() {
  local a b
  a="$(head -1 /proc/stat)"; sleep "$1"; b="$(head -1 /proc/stat)"
  awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x); split(b, y); t = 0;
    for (i = 2; i <= n; i++) t += y[i] - x[i];
    idle = (y[5] - x[5]) + (y[6] - x[6]); printf "%.0f", t ? 100 * (t - idle) / t : 0 }'
}
echo "# machine busy before the load (others' work): $(busy_pct 3)% of $(nproc) CPUs"
OTHERS="$("${PSQL[@]}" -Atc "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND application_name NOT LIKE 'sessionkit-%'")"
echo "# PostgreSQL $("${PSQL[@]}" -Atc 'SHOW server_version') on $PG_HOST, schema $SCHEMA;" \
  "synchronous_commit=$("${PSQL[@]}" -Atc 'SHOW synchronous_commit')," \
  "autovacuum=$("${PSQL[@]}" -Atc 'SHOW autovacuum'), other client backends: $OTHERS"

echo "## 1. validate: embedded vs PostgreSQL, no near-cache (PostgreSQL's CPU counted)"
compare_cpu embedded "$PID_emb" "http://127.0.0.1:$PORT_emb$V" "$WORK/v_emb.lua" \
  pg "$PID_plain" "http://127.0.0.1:$PORT_plain$V" "$WORK/v_pg.lua"
echo "## 1. validate: embedded vs PostgreSQL, near-cache warm (PostgreSQL's CPU counted)"
compare_cpu embedded "$PID_emb" "http://127.0.0.1:$PORT_emb$V" "$WORK/v_emb.lua" \
  pg+nc "$PID_nc" "http://127.0.0.1:$PORT_nc$V" "$WORK/v_pg.lua"
curl -s "http://127.0.0.1:$PORT_nc/metrics" | grep '^sessiond_near_cache' || true

echo "## 2. creates/s, wrk -t$THREADS -c$CREATE_CONNS -d${CREATE_SECS}s, a new subject per create, $CREATE_ROUNDS rounds"
printf "$HDR" round target "creates/s" "p50 us" "p99 us" "cpu ns/req" "sessiond" "postgres" "other ms"
CR=()
for r in $(seq "$CREATE_ROUNDS"); do
  m1="$(measure embedded "$PID_emb" 0 "$CREATE_CONNS" "$CREATE_SECS" \
    "$WORK/c_emb.lua" "http://127.0.0.1:$PORT_emb/v1/sessions" "e$r")"
  m2="$(measure pg "$PID_nc" 1 "$CREATE_CONNS" "$CREATE_SECS" \
    "$WORK/c_pg.lua" "http://127.0.0.1:$PORT_nc/v1/sessions" "p$r")"
  read -r n1 rps1 p501 p991 c1 s1 g1 o1 <<<"$m1"
  read -r n2 rps2 p502 p992 c2 s2 g2 o2 <<<"$m2"
  printf "$HDR" "$r" "$n1" "$rps1" "$p501" "$p991" "$c1" "$s1" "$g1" "$o1" \
    "$r" "$n2" "$rps2" "$p502" "$p992" "$c2" "$s2" "$g2" "$o2"
  CR+=("$(ratio "$rps2" "$rps1")")
done
echo "per-round creates/s ratio (pg/embedded): ${CR[*]}"
echo "median ratio: $(median "${CR[@]}")"

# Where a create's PostgreSQL time goes: the function and its two
# SQL-language helpers, each timed in a loop in one backend, in one
# transaction that is rolled back (no commit, no round trip).
echo "## 2. one backend, one transaction (rolled back), $SPLIT_N calls each: µs per call"
"${PSQL[@]}" -v n="$SPLIT_N" 2>&1 <<SQL | sed -n 's/^.*NOTICE: *//p'
SET search_path = $SCHEMA;
SET client_min_messages = notice;
BEGIN;
SELECT set_config('bench.n', :'n', true);
DO \$\$
DECLARE
  n constant int := current_setting('bench.n')::int;
  t timestamptz;
  i int;
BEGIN
  PERFORM sk_raise_floor(0::smallint, 0);
  PERFORM sk_count('split-w', 0::smallint, 1, 1, 0);
  t := clock_timestamp();
  FOR i IN 1..n LOOP PERFORM sk_raise_floor((i % 16)::smallint, 0); END LOOP;
  RAISE NOTICE 'sk_raise_floor (SQL function)   %', round(extract(epoch FROM clock_timestamp() - t) * 1e6 / n, 1);
  t := clock_timestamp();
  FOR i IN 1..n LOOP UPDATE clock SET floor = 0 WHERE shard = (i % 16)::smallint AND floor < 0; END LOOP;
  RAISE NOTICE 'its UPDATE, inline              %', round(extract(epoch FROM clock_timestamp() - t) * 1e6 / n, 1);
  t := clock_timestamp();
  FOR i IN 1..n LOOP PERFORM sk_count('split-a-' || i, 0::smallint, 1, 1, 0); END LOOP;
  RAISE NOTICE 'sk_count (SQL function)         %', round(extract(epoch FROM clock_timestamp() - t) * 1e6 / n, 1);
  t := clock_timestamp();
  FOR i IN 1..n LOOP
    INSERT INTO counters AS c (tenant, shard, active, anonymous, subjects)
      VALUES ('split-b-' || i, 0::smallint, 1, 1, 0)
      ON CONFLICT (tenant, shard) DO UPDATE
        SET active = c.active + EXCLUDED.active, anonymous = c.anonymous + EXCLUDED.anonymous,
            subjects = c.subjects + EXCLUDED.subjects;
  END LOOP;
  RAISE NOTICE 'its upsert, inline              %', round(extract(epoch FROM clock_timestamp() - t) * 1e6 / n, 1);
  t := clock_timestamp();
  FOR i IN 1..n LOOP
    PERFORM sk_create(gen_random_uuid(), 'split-c-' || i, sha256(('split-c-' || i)::bytea), NULL,
      0::smallint, NULL, 1, 0, 0, 1800000, 2592000000, 0, convert_to('{"cart":3}', 'UTF8'),
      '\x0100000000'::bytea, NULL, NULL, NULL, NULL, NULL, 0, 100, false, NULL, NULL);
  END LOOP;
  RAISE NOTICE 'sk_create, anonymous            %', round(extract(epoch FROM clock_timestamp() - t) * 1e6 / n, 1);
  t := clock_timestamp();
  FOR i IN 1..n LOOP
    PERFORM sk_create(gen_random_uuid(), 'split-d-' || i, sha256(('split-d-' || i)::bytea), 'u-' || i,
      0::smallint, NULL, 1, 0, 0, 1800000, 2592000000, 0, convert_to('{"cart":3}', 'UTF8'),
      '\x0100000000'::bytea, NULL, NULL, NULL, NULL, NULL, 0, 100, false, NULL, NULL);
  END LOOP;
  RAISE NOTICE 'sk_create, a new subject        %', round(extract(epoch FROM clock_timestamp() - t) * 1e6 / n, 1);
END
\$\$;
ROLLBACK;
SQL

# insert_expired N SUBJECTS: N sessions whose idle deadline has passed
# (created 1-2 h ago, idle timeout 30 min, absolute 30 days), with version-7
# ids of their creation time, counted as the store counts them: counters
# (active, anonymous, subjects; the store sums the 16 shards) and, with
# SUBJECTS > 0, subject rows (epoch 1, active = their sessions).
insert_expired() {
  "${PSQL[@]}" -v n="$1" -v subjects="$2" -v now="$(now_ms)" <<SQL
SET search_path = $SCHEMA;
CREATE TEMP TABLE gen AS
  SELECT g, (lpad(to_hex(t), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid AS id,
         t AS created_at,
         CASE WHEN :subjects > 0 THEN 'expired-' || (g % :subjects) END AS subject
    FROM (SELECT g, :now::bigint - 7200000 + (g::bigint * 3599) % 3600000 AS t, md5(g::text) AS h
            FROM generate_series(1, :n) g) x;
INSERT INTO sessions (id, tenant, token_hash, subject, subject_epoch, state, revoked_at, version,
    created_at, last_seen_at, idle_timeout_ms, expires_at, auth_time, purge_after, attributes, client)
  SELECT id, 'default', sha256(('expired-' || :subjects || '-' || g)::bytea), subject,
         CASE WHEN subject IS NOT NULL THEN 1 END, 0, NULL, 1,
         created_at, created_at, 1800000, created_at + 2592000000, created_at,
         created_at + 1800000, convert_to('{"cart":3}', 'UTF8'), '\x0100000000'::bytea
    FROM gen;
INSERT INTO subjects (tenant, subject, epoch, active)
  SELECT 'default', subject, 1, count(*) FROM gen WHERE subject IS NOT NULL GROUP BY subject;
INSERT INTO counters AS c (tenant, shard, active, anonymous, subjects)
  SELECT 'default', sk_shard(id), count(*), count(*) FILTER (WHERE subject IS NULL), 0
    FROM gen GROUP BY 2
  ON CONFLICT (tenant, shard) DO UPDATE
    SET active = c.active + EXCLUDED.active, anonymous = c.anonymous + EXCLUDED.anonymous;
INSERT INTO counters AS c (tenant, shard, active, anonymous, subjects)
  SELECT 'default', 0, 0, 0, count(DISTINCT subject) FROM gen
  ON CONFLICT (tenant, shard) DO UPDATE SET subjects = c.subjects + EXCLUDED.subjects;
DROP TABLE gen;
VACUUM ANALYZE sessions;
VACUUM ANALYZE subjects;
VACUUM ANALYZE counters;
SQL
}
rows() { "${PSQL[@]}" -Atc "SELECT count(*) FROM $SCHEMA.sessions"; }
admin() { cat "$WORK/plain/admin.key"; }

# lat_row LABEL WRK_OUTPUT: one window's line; its p99 appended to P99S
lat_row() {
  printf "%-14s %8s %10s %9s %9s %8s %s\n" "$1" "$(wrk_field "$2" secs)" "$(wrk_field "$2" rps)" \
    "$(wrk_field "$2" p50)" "$(wrk_field "$2" p99)" "$(wrk_field "$2" non2xx)" "$(wrk_field "$2" errors)"
}
lat_wrk() { # URL SECS
  wrk -t"$THREADS" -c"$CONNS" -d"$2s" --latency --timeout 10s -s "$WORK/v_pg.lua" "$1"
}

# purge_phase NAME PORT PID: validate load in windows of PURGE_WINDOW s:
# IDLE_WINDOWS idle, then windows while `POST /v1/purge` runs on the same
# node (the last one cut when the purge answers), then IDLE_WINDOWS idle.
purge_phase() {
  local name="$1" port="$2" pid="$3" t0 t1 before after out code wp cp i secs
  local b_sd b_pg b_all a_sd a_pg a_all pg_ns idle=() busy=()
  local url="http://127.0.0.1:$port$V"
  t0="$(now_ms)"; insert_expired "$N_EXPIRED" 0; t1="$(now_ms)"
  before="$(rows)"
  echo "inserted $N_EXPIRED expired anonymous sessions (+ VACUUM ANALYZE) in $(( (t1 - t0) / 1000 )) s; $before rows"
  printf "%-14s %8s %10s %9s %9s %8s %s\n" window seconds "req/s" "p50 us" "p99 us" non-2xx "socket errors"
  lat_wrk "$url" 1 >/dev/null
  for i in $(seq "$IDLE_WINDOWS"); do
    out="$(lat_wrk "$url" "$PURGE_WINDOW")"; lat_row idle-before "$out"; idle+=("$(wrk_field "$out" p99)")
  done
  b_all="$(cpu_snap pg:all)"; b_sd="$(cpu_snap "$pid")"; b_pg="$(cpu_snap "pg:$pid")"
  t0="$(now_ms)"
  curl -s -m 600 -o "$WORK/purge.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/purge" \
    -H "Authorization: Bearer $(admin)" >"$WORK/purge.code" &
  cp=$!; PIDS+=("$cp")
  while :; do
    lat_wrk "$url" "$PURGE_WINDOW" >"$WORK/purge.wrk" &
    wp=$!; PIDS+=("$wp")
    wait -n "$cp" "$wp" || true
    if kill -0 "$cp" 2>/dev/null; then
      wait "$wp" || true; unset 'PIDS[-1]'
      out="$(cat "$WORK/purge.wrk")"; lat_row during-purge "$out"; busy+=("$(wrk_field "$out" p99)")
      continue
    fi
    # The purge answered: stop this window (kept if 3 s or more).
    kill -INT "$wp" 2>/dev/null || true; wait "$wp" || true; unset 'PIDS[-1]'
    t1="$(now_ms)"
    out="$(cat "$WORK/purge.wrk")"; secs="$(wrk_field "$out" secs)"
    if awk -v s="$secs" 'BEGIN {exit !((s + 0) >= 3 || s ~ /m$/)}'; then
      lat_row "purge (last)" "$out"; busy+=("$(wrk_field "$out" p99)")
    else
      lat_row "(cut, dropped)" "$out"
    fi
    break
  done
  wait "$cp" 2>/dev/null || true; unset 'PIDS[-1]'
  a_sd="$(cpu_snap "$pid")"; a_pg="$(cpu_snap "pg:$pid")"; a_all="$(cpu_snap pg:all)"
  for i in $(seq "$IDLE_WINDOWS"); do
    out="$(lat_wrk "$url" "$PURGE_WINDOW")"; lat_row idle-after "$out"; idle+=("$(wrk_field "$out" p99)")
  done
  code="$(cat "$WORK/purge.code")"; after="$(rows)"
  pg_ns="$(cpu_delta "$b_pg" "$a_pg")"
  echo "POST /v1/purge: HTTP $code $(cat "$WORK/purge.json") in $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) s;" \
    "rows $before -> $after; CPU meanwhile (validate load included): sessiond $(( $(cpu_delta "$b_sd" "$a_sd") / 1000000 )) ms," \
    "postgres $(( pg_ns / 1000000 )) ms, other clients of the cluster $(( ($(cpu_delta "$b_all" "$a_all") - pg_ns) / 1000000 )) ms"
  [ "$code" = 200 ] || echo "$name: the purge failed" >&2
  [ "${#busy[@]}" -gt 0 ] || { echo "$name: the purge was shorter than one window" >&2; return; }
  local mi mb; mi="$(median "${idle[@]}")"; mb="$(median "${busy[@]}")"
  echo "p99 (median of windows): during the purge $mb us, idle $mi us; ratio $(ratio "$mb" "$mi");" \
    "worst purge window / median idle $(ratio "$(printf '%s\n' "${busy[@]}" | sort -g | tail -1)" "$mi")"
  "${PSQL[@]}" -Atc "SELECT 'counters now: active ' || sum(active) || ', anonymous ' || sum(anonymous)
    || ', subjects ' || sum(subjects) FROM $SCHEMA.counters"
}

echo "## 3. purge of $N_EXPIRED expired sessions under validate load (wrk -t$THREADS -c$CONNS), node without near-cache"
purge_phase pg "$PORT_plain" "$PID_plain"
echo "## 3. purge of $N_EXPIRED expired sessions under validate load (wrk -t$THREADS -c$CONNS), near-cache node"
purge_phase pg+nc "$PORT_nc" "$PID_nc"

if [ "$SUBJECT_PROBE" = 1 ]; then
  echo "## 4. purge probe: $N_EXPIRED expired sessions of $((N_EXPIRED / 4)) subjects, no load"
  t0="$(now_ms)"; insert_expired "$N_EXPIRED" $((N_EXPIRED / 4)); t1="$(now_ms)"
  before="$(rows)"
  echo "inserted in $(( (t1 - t0) / 1000 )) s; $before rows"
  t0="$(now_ms)"
  code="$(curl -s -m 120 -o "$WORK/purge.json" -w '%{http_code}' -X POST "http://127.0.0.1:$PORT_plain/v1/purge" \
    -H "Authorization: Bearer $(admin)" || true)"
  t1="$(now_ms)"
  echo "POST /v1/purge: HTTP $code $(cat "$WORK/purge.json") in $(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 )) s; rows $before -> $(rows)"
  "${PSQL[@]}" <<SQL
SET search_path = $SCHEMA;
SET statement_timeout = '120s';
\timing on
BEGIN;
SELECT count(*) AS purged_by_sk_purge_50 FROM sk_purge($(now_ms), 50);
ROLLBACK;
\timing off
EXPLAIN DELETE FROM subjects sub WHERE sub.tenant = 'default' AND sub.subject = 'expired-1'
  AND sub.active = 0 AND NOT EXISTS (SELECT 1 FROM sessions x
                                      WHERE x.tenant = 'default' AND x.subject = 'expired-1');
SQL
fi
echo "# done in $SECONDS s"
