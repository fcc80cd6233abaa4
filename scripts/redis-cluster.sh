#!/usr/bin/env bash
# A local three-master Redis Cluster on loopback, for trying the server
# (README) and the throughput example against a cluster by hand. The tests
# do not need it: they start a cluster of their own on spare ports
# (test-support/src/redis_cluster.rs), or use the one
# TOKEN_REFRESH_REDIS_CLUSTER_URL names, this one for instance.
#
#   bash scripts/redis-cluster.sh start    # start it unless it is up (idempotent)
#   bash scripts/redis-cluster.sh status   # exit 0 when every node says cluster_state:ok
#   bash scripts/redis-cluster.sh stop     # stop the nodes this script started, by PID
#
# Environment:
#   TOKEN_REFRESH_CLUSTER_PORTS  the three ports (default "7101 7102 7103":
#                                redis-cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103,
#                                what tools/src/bin/ledger_throughput.rs uses when
#                                TOKEN_REFRESH_REDIS_CLUSTER_URL is unset)
#   TOKEN_REFRESH_CLUSTER_DIR    where the nodes keep their config, pid and log
#                                files (default /tmp/token-refresh-redis-cluster)
#
# The nodes bind 127.0.0.1 only, persist nothing (--save "" --appendonly
# no) and run maxmemory-policy noeviction, which the ledger requires.
set -euo pipefail

read -r -a PORTS <<<"${TOKEN_REFRESH_CLUSTER_PORTS:-7101 7102 7103}"
DIR=${TOKEN_REFRESH_CLUSTER_DIR:-/tmp/token-refresh-redis-cluster}

if [ "${#PORTS[@]}" -ne 3 ]; then
  echo "TOKEN_REFRESH_CLUSTER_PORTS must name three ports" >&2
  exit 2
fi

url() {
  local nodes=() port
  for port in "${PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
  local IFS=,
  echo "redis-cluster://${nodes[*]}"
}

node_ok() {
  redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok'
}

cluster_ok() {
  local port
  for port in "${PORTS[@]}"; do node_ok "$port" || return 1; done
}

# The PID in a node's pidfile, if that process is a live redis-server.
node_pid() {
  local pidfile="$DIR/redis-$1.pid" pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q redis-server || return 1
  echo "$pid"
}

stop() {
  local port pid
  for port in "${PORTS[@]}"; do
    if pid=$(node_pid "$port"); then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "redis-server $pid (port $port) did not stop" >&2
        return 1
      fi
    fi
    rm -f "$DIR/redis-$port.pid" "$DIR/nodes-$port.conf"
  done
}

start() {
  if cluster_ok; then
    echo "Redis Cluster already up: $(url)"
    return
  fi
  # Not (fully) up: start over from empty nodes, so a half-made cluster of
  # an earlier run cannot get in the way.
  stop
  mkdir -p "$DIR"
  local port nodes=()
  for port in "${PORTS[@]}"; do
    if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
      echo "port $port is taken by a server this script did not start" >&2
      return 1
    fi
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file "$DIR/nodes-$port.conf" --cluster-node-timeout 5000 \
      --dir "$DIR" --save "" --appendonly no --maxmemory-policy noeviction \
      --daemonize yes --pidfile "$DIR/redis-$port.pid" --logfile "$DIR/redis-$port.log"
    nodes+=("127.0.0.1:$port")
  done
  for port in "${PORTS[@]}"; do
    for _ in $(seq 1 50); do
      redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
      sleep 0.1
    done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1 || {
    cat "$DIR/create.log" >&2
    return 1
  }
  for _ in $(seq 1 300); do
    if cluster_ok; then
      echo "Redis Cluster up: $(url)"
      return
    fi
    sleep 0.1
  done
  echo "Redis Cluster did not reach cluster_state:ok (logs in $DIR)" >&2
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if cluster_ok; then
      echo "Redis Cluster up: $(url)"
    else
      echo "Redis Cluster down ($(url))"
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
