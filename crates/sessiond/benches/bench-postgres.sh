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
# PURGE_WINDOW (8), IDLE_WINDOWS (2), CUT_MIN (3: the shortest last purge
# window kept), SUBJECT_PROBE (1), BENCH_SESSIOND_BIN (a
# sessiond binary to use instead of building this checkout's).
# Needs: wrk, curl, psql, python3, pgrep, ss, and that PostgreSQL running;
# lib-bench.sh beside it (sourced: the helpers it shares with
# bench-embedded-purge.sh, the purge windows among them).
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
. "$ROOT/crates/sessiond/benches/lib-bench.sh"

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
BIN="$(sessiond_bin)"

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
PG_ENV=(SESSIOND_STORE=postgres "SESSIOND_STORE_URL=$PG_URL" "SESSIOND_STORE_PREFIX=$SCHEMA")
start emb "$WORK/emb"
SCHEMA_MADE=1
start nc "$WORK/nc" "${PG_ENV[@]}"
[ -n "$("${PSQL[@]}" -Atc "SELECT 1 FROM pg_namespace WHERE nspname = '$SCHEMA'")" ] ||
  { echo "sessiond did not create schema $SCHEMA" >&2; exit 1; }

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
  local ns
  for p in "${list[@]}"; do
    ns="$(task_cpu_ns "$p")"; [ -z "$ns" ] || echo "$p $ns"
  done
}
# cpu_delta BEFORE AFTER -> ns on CPU between two snapshots, over the
# processes of AFTER (one that appeared in between counts whole; the
# "reaped" line holds the CPU of those that ended)
cpu_delta() {
  awk 'NR == FNR {b[$1] = $2; next} {s += $2 - (($1 in b) ? b[$1] : 0)} END {printf "%d", s}' \
    <(echo "$1") <(echo "$2")
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

# purge_phase NAME PORT PID: validate load in windows of PURGE_WINDOW s:
# IDLE_WINDOWS idle, then windows while `POST /v1/purge` runs on the same
# node (the last one cut when the purge answers), then IDLE_WINDOWS idle
# (purge_windows in lib-bench.sh). CPU read around the purge.
purge_phase() {
  local name="$1" port="$2" pid="$3" t0 t1 before after
  local b_sd b_pg b_all a_sd a_pg a_all pg_ns
  t0="$(now_ms)"; insert_expired "$N_EXPIRED" 0; t1="$(now_ms)"
  before="$(rows)"
  echo "inserted $N_EXPIRED expired anonymous sessions (+ VACUUM ANALYZE) in $(( (t1 - t0) / 1000 )) s; $before rows"
  purge_started() { b_all="$(cpu_snap pg:all)"; b_sd="$(cpu_snap "$pid")"; b_pg="$(cpu_snap "pg:$pid")"; }
  purge_ended() { a_sd="$(cpu_snap "$pid")"; a_pg="$(cpu_snap "pg:$pid")"; a_all="$(cpu_snap pg:all)"; }
  purge_windows "http://127.0.0.1:$port$V" "$WORK/v_pg.lua" "$port" "$(admin)"
  after="$(rows)"
  pg_ns="$(cpu_delta "$b_pg" "$a_pg")"
  echo "POST /v1/purge: HTTP $PURGE_CODE $PURGE_BODY in $PURGE_SECS s;" \
    "rows $before -> $after; CPU meanwhile (validate load included): sessiond $(( $(cpu_delta "$b_sd" "$a_sd") / 1000000 )) ms," \
    "postgres $(( pg_ns / 1000000 )) ms, other clients of the cluster $(( ($(cpu_delta "$b_all" "$a_all") - pg_ns) / 1000000 )) ms"
  [ "$PURGE_CODE" = 200 ] || echo "$name: the purge failed" >&2
  p99_summary "$name"
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
