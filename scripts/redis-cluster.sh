#!/usr/bin/env bash
# A throwaway 3-master Redis Cluster on loopback, for the Cluster tests.
#
#   scripts/redis-cluster.sh start [DIR]   # prints the URL to use as REDIS_CLUSTER_URL
#   scripts/redis-cluster.sh stop  [DIR]
#
# Picks three free ports (from 7100 up), starts one redis-server per port
# with --cluster-enabled yes (no persistence) in DIR (default
# /tmp/sessionkit-redis-cluster), joins them with
# `redis-cli --cluster create … --cluster-yes` and waits for cluster_state:ok.
# Never touches the shared Redis on 6379.
set -euo pipefail
cmd="${1:-}"
dir="${2:-/tmp/sessionkit-redis-cluster}"

free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null; do
    p=$((p + 1))
  done
  echo "$p"
}

case "$cmd" in
start)
  "$0" stop "$dir" >/dev/null 2>&1 || true
  mkdir -p "$dir"
  ports=()
  p=7100
  for _ in 1 2 3; do
    p=$(free_port "$p")
    ports+=("$p")
    mkdir -p "$dir/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$dir/$p/nodes.conf" --cluster-node-timeout 2000 \
      --save "" --appendonly no --dir "$dir/$p" --daemonize yes \
      --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log"
    p=$((p + 1))
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 50); do
      redis-cli -p "$p" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 || {
    cat "$dir/create.log" >&2
    exit 1
  }
  for p in "${ports[@]}"; do
    for i in $(seq 100); do
      redis-cli -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
      if [ "$i" = 100 ]; then echo "redis-cluster: node $p never reached cluster_state:ok" >&2; exit 1; fi
      sleep 0.1
    done
  done
  echo "${ports[*]}" >"$dir/ports"
  echo "redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
  ;;
stop)
  [ -f "$dir/ports" ] || exit 0
  for p in $(cat "$dir/ports"); do
    redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop [DIR]" >&2
  exit 2
  ;;
esac
