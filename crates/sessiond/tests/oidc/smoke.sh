#!/usr/bin/env bash
# Smoke test of the loopback OpenID provider (provider.mjs) and its /test API.
# Bounded: every curl has a time limit, the whole script stops itself after
# SMOKE_TIMEOUT seconds (default 90), and the providers it starts are killed
# on exit. Loopback only. Prints PASS or FAIL; exits nonzero on failure.
set -uo pipefail
cd "$(dirname "$0")"

SMOKE_TIMEOUT="${SMOKE_TIMEOUT:-90}"
WORK="$(mktemp -d)"
PIDS=()
FAILED=0

cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted"; exit 1' INT TERM

# Whole-script deadline.
(
  trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep "$SMOKE_TIMEOUT" & sp=$!
  wait "$sp" && echo "FAIL: smoke.sh took longer than ${SMOKE_TIMEOUT}s" >&2 && kill -TERM $$
) &
WATCHDOG=$!

fail() { echo "  not ok: $*"; FAILED=1; }
ok() { echo "  ok: $*"; }
die() { echo "  not ok: $*"; echo "FAIL"; exit 1; }

# JSON field of a file: jfield FILE KEY (prints "" when absent).
jfield() { node -e 'const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[process.argv[2]]; process.stdout.write(v === undefined || v === null ? "" : String(v))' "$1" "$2"; }
# Payload claim of a JWT: jwtclaim TOKEN CLAIM
jwtclaim() { node -e 'const p = JSON.parse(Buffer.from(process.argv[1].split(".")[1], "base64url")); process.stdout.write(String(p[process.argv[2]] ?? ""))' "$1" "$2"; }

command -v node >/dev/null || die "node is not installed"
command -v curl >/dev/null || die "curl is not installed"

if [ ! -d node_modules/oidc-provider ]; then
  echo "installing dependencies (npm ci)"
  timeout 300 npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
fi

# start_provider NAME ARGS... : starts provider.mjs on a free port, sets
# PORT_<NAME>; fails when READY does not come within 15 s.
start_provider() {
  local name="$1"; shift
  node provider.mjs --port 0 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS+=($!)
  local start=$(date +%s%N)
  for _ in $(seq 150); do
    if grep -q '^READY ' "$WORK/$name.out"; then
      local port; port="$(awk '/^READY /{print $2; exit}' "$WORK/$name.out")"
      printf -v "PORT_$name" '%s' "$port"
      echo "provider $name ready on port $port in $(( ($(date +%s%N) - start) / 1000000 )) ms"
      return 0
    fi
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  cat "$WORK/$name.err" >&2
  die "provider $name did not print READY"
}

CURL=(curl -sS --max-time 10)
BASIC=(-u sessiond-test:sessiond-test-secret)

# refresh BASE RT OUTFILE [curl args...] -> prints the HTTP status
refresh() {
  local base="$1" rt="$2" out="$3"; shift 3
  "${CURL[@]}" -o "$out" -w '%{http_code}' "$@" \
    --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$rt" "$base/token"
}
login() { # login BASE SUB OUTFILE [extra JSON fields]
  "${CURL[@]}" -o "$3" -w '%{http_code}' -X POST -H 'content-type: application/json' \
    -d "{\"sub\":\"$2\",\"scope\":\"openid offline_access\"${4:-}}" "$1/test/login"
}
post() { "${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' -d "$2" "$1"; }

start_provider rot --access-ttl 60
B="http://127.0.0.1:$PORT_rot"

echo "discovery"
"${CURL[@]}" -o "$WORK/disc.json" "$B/.well-known/openid-configuration" || die "discovery unreachable"
[ "$(jfield "$WORK/disc.json" issuer)" = "$B" ] && ok "issuer is $B" || fail "issuer is $(jfield "$WORK/disc.json" issuer)"
[ "$(jfield "$WORK/disc.json" token_endpoint)" = "$B/token" ] && ok "token_endpoint is $B/token" \
  || fail "token_endpoint is $(jfield "$WORK/disc.json" token_endpoint)"

"${CURL[@]}" -o "$WORK/disc2.json" "http://localhost:$PORT_rot/.well-known/openid-configuration"
[ "$(jfield "$WORK/disc2.json" token_endpoint)" = "$B/token" ] && ok "reached as localhost, still advertises $B/token" \
  || fail "via localhost token_endpoint is $(jfield "$WORK/disc2.json" token_endpoint)"

echo "login"
[ "$(login "$B" user-1 "$WORK/l1.json")" = 200 ] || die "/test/login: $(cat "$WORK/l1.json")"
RT0="$(jfield "$WORK/l1.json" refresh_token)"; AT0="$(jfield "$WORK/l1.json" access_token)"
[ -n "$RT0" ] && [ -n "$AT0" ] && ok "access and refresh token" || fail "tokens missing: $(cat "$WORK/l1.json")"
[ "$(jfield "$WORK/l1.json" expires_in)" = 60 ] && ok "expires_in 60" || fail "expires_in $(jfield "$WORK/l1.json" expires_in)"
[ "$(jwtclaim "$(jfield "$WORK/l1.json" id_token)" sub)" = user-1 ] && ok "id_token sub user-1" || fail "id_token sub"

echo "refresh (client_secret_basic, rotation on)"
[ "$(refresh "$B" "$RT0" "$WORK/r1.json" "${BASIC[@]}")" = 200 ] || die "refresh: $(cat "$WORK/r1.json")"
RT1="$(jfield "$WORK/r1.json" refresh_token)"; AT1="$(jfield "$WORK/r1.json" access_token)"
[ -n "$AT1" ] && [ "$AT1" != "$AT0" ] && ok "new access token" || fail "no new access token"
[ -n "$RT1" ] && [ "$RT1" != "$RT0" ] && ok "new (rotated) refresh token" || fail "refresh token not rotated"
[ "$(jwtclaim "$(jfield "$WORK/r1.json" id_token)" sub)" = user-1 ] && ok "id_token on refresh, sub user-1" || fail "no id_token on refresh"

echo "reuse of the rotated-out refresh token"
code="$(refresh "$B" "$RT0" "$WORK/r2.json" "${BASIC[@]}")"
[ "$code" = 400 ] && [ "$(jfield "$WORK/r2.json" error)" = invalid_grant ] && ok "400 $(cat "$WORK/r2.json")" \
  || fail "reuse answered $code $(cat "$WORK/r2.json")"

"${CURL[@]}" -o "$WORK/calls.json" "$B/test/calls"
[ "$(jfield "$WORK/calls.json" token_refresh)" = 2 ] && [ "$(jfield "$WORK/calls.json" token_other)" = 0 ] \
  && ok "calls $(cat "$WORK/calls.json")" || fail "calls $(cat "$WORK/calls.json"), wanted 2 refresh, 0 other"

echo "reuse revoked the whole grant (library default)"
code="$(refresh "$B" "$RT1" "$WORK/r3.json" "${BASIC[@]}")"
[ "$code" = 400 ] && [ "$(jfield "$WORK/r3.json" error)" = invalid_grant ] && ok "newest refresh token refused too" \
  || fail "newest refresh token after reuse answered $code $(cat "$WORK/r3.json")"

echo "/test/revoke"
[ "$(post "$B/test/reset-calls" '{}')" = 200 ] || fail "reset-calls"
"${CURL[@]}" -o "$WORK/calls.json" "$B/test/calls"
[ "$(cat "$WORK/calls.json")" = '{"token_refresh":0,"token_other":0}' ] && ok "reset-calls zeroed" || fail "after reset $(cat "$WORK/calls.json")"
login "$B" user-1 "$WORK/l2.json" >/dev/null; login "$B" user-2 "$WORK/l3.json" >/dev/null
RTa="$(jfield "$WORK/l2.json" refresh_token)"; RTb="$(jfield "$WORK/l3.json" refresh_token)"
[ "$(refresh "$B" "$RTa" "$WORK/r4.json" "${BASIC[@]}")" = 200 ] && ok "user-1 refresh works before revoke" || fail "user-1 refresh $(cat "$WORK/r4.json")"
RTa="$(jfield "$WORK/r4.json" refresh_token)"
[ "$(post "$B/test/revoke" '{"sub":"user-1"}')" = 200 ] || fail "/test/revoke"
code="$(refresh "$B" "$RTa" "$WORK/r5.json" "${BASIC[@]}")"
[ "$code" = 400 ] && [ "$(jfield "$WORK/r5.json" error)" = invalid_grant ] && ok "user-1 refused after revoke: $(cat "$WORK/r5.json")" \
  || fail "user-1 after revoke answered $code $(cat "$WORK/r5.json")"
[ "$(refresh "$B" "$RTb" "$WORK/r6.json" "${BASIC[@]}")" = 200 ] && ok "user-2 unaffected" || fail "user-2 $(cat "$WORK/r6.json")"
RTb="$(jfield "$WORK/r6.json" refresh_token)"

echo "client_secret_post client"
login "$B" user-3 "$WORK/l4.json" ',"client_id":"sessiond-post"' >/dev/null
RTp="$(jfield "$WORK/l4.json" refresh_token)"
code="$(refresh "$B" "$RTp" "$WORK/r7.json" --data-urlencode client_id=sessiond-post --data-urlencode client_secret=sessiond-post-secret)"
[ "$code" = 200 ] && ok "sessiond-post refresh with client_secret_post" || fail "client_secret_post answered $code $(cat "$WORK/r7.json")"
code="$(refresh "$B" "$RTa" "$WORK/r8.json" -u sessiond-test:wrong)"
[ "$code" = 401 ] && ok "wrong secret: 401 $(cat "$WORK/r8.json")" || fail "wrong secret answered $code $(cat "$WORK/r8.json")"

echo "/test/fail"
[ "$(post "$B/test/fail" '{"status":503,"count":2}')" = 200 ] || fail "/test/fail"
for i in 1 2; do
  code="$(refresh "$B" "$RTb" "$WORK/f$i.json" "${BASIC[@]}")"
  [ "$code" = 503 ] && [ "$(jfield "$WORK/f$i.json" error)" = temporarily_unavailable ] && ok "injected $code $(cat "$WORK/f$i.json")" \
    || fail "injected failure $i answered $code $(cat "$WORK/f$i.json")"
done
code="$(refresh "$B" "$RTb" "$WORK/f3.json" "${BASIC[@]}")"
[ "$code" = 200 ] && ok "third request handled (failed ones left the token intact)" || fail "after failures answered $code $(cat "$WORK/f3.json")"
RTb="$(jfield "$WORK/f3.json" refresh_token)"
post "$B/test/fail" '{"status":500,"count":-1}' >/dev/null
c1="$(refresh "$B" "$RTb" /dev/null "${BASIC[@]}")"; c2="$(refresh "$B" "$RTb" /dev/null "${BASIC[@]}")"
post "$B/test/fail" '{"count":0}' >/dev/null
c3="$(refresh "$B" "$RTb" "$WORK/f4.json" "${BASIC[@]}")"
[ "$c1$c2$c3" = 500500200 ] && ok "count -1 until reset (500 500, then 200)" || fail "count -1: $c1 $c2 $c3"
RTb="$(jfield "$WORK/f4.json" refresh_token)"

echo "/test/delay"
post "$B/test/delay" '{"ms":400}' >/dev/null
t="$("${CURL[@]}" -o "$WORK/d1.json" -w '%{time_total}' "${BASIC[@]}" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$RTb" "$B/token")"
post "$B/test/delay" '{"ms":0}' >/dev/null
awk -v t="$t" 'BEGIN{exit !(t >= 0.4)}' && [ "$(jfield "$WORK/d1.json" access_token)" != "" ] && ok "delayed ${t}s then handled" || fail "delay: ${t}s $(cat "$WORK/d1.json")"

"${CURL[@]}" -o "$WORK/calls.json" "$B/test/calls"
# since reset: user-1 refresh, revoked refresh, user-2 refresh, post refresh,
# wrong secret, 2 injected, 1 after, 2 injected, 1 after, 1 delayed = 12
[ "$(jfield "$WORK/calls.json" token_refresh)" = 12 ] && [ "$(jfield "$WORK/calls.json" token_other)" = 0 ] \
  && ok "calls $(cat "$WORK/calls.json") (logins not counted)" || fail "calls $(cat "$WORK/calls.json"), wanted 12 refresh, 0 other"

echo "control API is loopback-only and rejects bad input"
[ "$(post "$B/test/delay" '{"ms":-1}')" = 400 ] && ok "bad delay 400" || fail "bad delay accepted"
code="$("${CURL[@]}" -o /dev/null -w '%{http_code}' -X POST -d 'grant_type=client_credentials' "${BASIC[@]}" "$B/token")"
"${CURL[@]}" -o "$WORK/calls.json" "$B/test/calls"
[ "$(jfield "$WORK/calls.json" token_other)" = 1 ] && ok "other grant type counted as token_other ($code)" || fail "token_other $(cat "$WORK/calls.json")"

start_provider norot --rotate-refresh false --access-ttl 5
N="http://127.0.0.1:$PORT_norot"
echo "rotation off"
login "$N" user-1 "$WORK/n1.json" >/dev/null
RTn="$(jfield "$WORK/n1.json" refresh_token)"
[ "$(jfield "$WORK/n1.json" expires_in)" = 5 ] && ok "--access-ttl 5 gives expires_in 5" || fail "expires_in $(jfield "$WORK/n1.json" expires_in)"
refresh "$N" "$RTn" "$WORK/n2.json" "${BASIC[@]}" >/dev/null
refresh "$N" "$RTn" "$WORK/n3.json" "${BASIC[@]}" >/dev/null
[ "$(jfield "$WORK/n2.json" refresh_token)" = "$RTn" ] && [ "$(jfield "$WORK/n3.json" refresh_token)" = "$RTn" ] \
  && [ -n "$(jfield "$WORK/n3.json" access_token)" ] && ok "same refresh token returned and reusable" \
  || fail "rotation off: $(cat "$WORK/n2.json") / $(cat "$WORK/n3.json")"

echo "SIGTERM stops the provider"
kill -TERM "${PIDS[-1]}"
for _ in $(seq 30); do kill -0 "${PIDS[-1]}" 2>/dev/null || break; sleep 0.1; done
kill -0 "${PIDS[-1]}" 2>/dev/null && fail "provider still running 3 s after SIGTERM" || ok "exited"

if [ "$FAILED" = 0 ]; then echo "PASS"; exit 0; else
  for f in "$WORK"/*.err; do echo "--- $f"; cat "$f"; done
  echo "FAIL"; exit 1
fi
