# Sourced by the bounded load benches (crates/*/benches/bench-*.sh): server
# CPU per request of a target against a baseline, measured in one run
# (docs/benchmarks.md).
#
# CPU per request: the sum over the server's threads of the first field of
# /proc/<pid>/task/*/schedstat (ns on CPU), read before and after a wrk run,
# over the requests wrk completed. Each round runs the baseline, then the
# target; the figure is the median of the per-round ratios (the two run
# back to back within seconds, so a round compares them under the same
# machine noise).
#
# The caller sets DURATION, ROUNDS, CONNS, THREADS and LUA (a wrk script),
# then calls: compare BASE_NAME BASE_PID BASE_URL TARGET_NAME TARGET_PID TARGET_URL
# (a PID may be a comma-separated list: their CPU is summed).

# cpu_ns PID[,PID...]: CPU ns of every thread of those processes (a
# target may be sessiond plus its Redis).
cpu_ns() {
  local p files=()
  for p in ${1//,/ }; do files+=(/proc/"$p"/task/*/schedstat); done
  cat "${files[@]}" | awk '{s+=$1} END {printf "%d", s}'
}

# wrk_run NAME PID URL -> prints "NAME rps p50 cpu_ns_per_req"
wrk_run() {
  local name="$1" pid="$2" url="$3"
  wrk -t"$THREADS" -c"$CONNS" -d1s -s "$LUA" "$url" >/dev/null
  local before after out reqs rps p50
  before="$(cpu_ns "$pid")"
  out="$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$LUA" "$url")"
  after="$(cpu_ns "$pid")"
  if echo "$out" | grep -q "Non-2xx"; then echo "$name: non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
  reqs="$(echo "$out" | awk '/requests in/ {print $1}')"
  rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
  p50="$(echo "$out" | awk '$1=="50%" {print $2}')"
  echo "$name $rps $p50 $(( (after - before) / reqs ))"
}

compare() {
  local bn="$1" bp="$2" bu="$3" tn="$4" tp="$5" tu="$6"
  echo "# wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds, $(nproc) CPUs"
  printf "%-6s %-9s %12s %10s %16s\n" round target "req/s" p50 "cpu ns/req"
  local ratios=() sum_b=0 sum_t=0 r n1 rps1 p501 cpu1 n2 rps2 p502 cpu2
  for r in $(seq "$ROUNDS"); do
    read -r n1 rps1 p501 cpu1 < <(wrk_run "$bn" "$bp" "$bu")
    read -r n2 rps2 p502 cpu2 < <(wrk_run "$tn" "$tp" "$tu")
    printf "%-6s %-9s %12s %10s %16s\n" "$r" "$n1" "$rps1" "$p501" "$cpu1" "$r" "$n2" "$rps2" "$p502" "$cpu2"
    sum_b=$((sum_b + cpu1)); sum_t=$((sum_t + cpu2))
    ratios+=("$(python3 -c "print(round($cpu2/$cpu1, 3))")")
  done
  echo "per-round CPU ratio ($tn/$bn): ${ratios[*]}"
  echo "median ratio: $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')"
  echo "mean CPU per request: $bn $((sum_b / ROUNDS)) ns, $tn $((sum_t / ROUNDS)) ns, ratio of means $(python3 -c "print(round($sum_t/$sum_b, 3))")"
}
