#!/usr/bin/env bash
# Starts a Parlor cluster on this machine: one Redis (Debian's redis-server,
# on a Unix socket) and N nodes on consecutive ports, every log in one
# folder; Ctrl-C (or SIGTERM) stops them all.
#
# Usage: deploy/local-cluster.sh N [--port FIRST] [--dir FOLDER]
#   N        nodes to start (1 to 64)
#   --port   the first node's port (default 8080); node i listens on FIRST+i-1
#   --dir    where the socket, the logs and the nodes' stores go
#            (default: a new folder under /tmp)
# Environment:
#   PARLOR_BIN   the parlor binary (default: target/release/parlor, built with
#                `cargo build --release` when missing)
#   PARLOR_*     any other configuration key, given to every node
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

NODES=${1:-}
[[ "$NODES" =~ ^[0-9]+$ ]] && [ "$NODES" -ge 1 ] && [ "$NODES" -le 64 ] || usage
shift
PORT=8080
DIR=
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=${2:?}; shift 2 ;;
    --dir) DIR=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
[[ "$PORT" =~ ^[0-9]+$ ]] || usage

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${PARLOR_BIN:-$ROOT/target/release/parlor}
if [ ! -x "$BIN" ]; then
  if [ -n "${PARLOR_BIN:-}" ]; then
    echo "local-cluster: PARLOR_BIN=$PARLOR_BIN is not an executable" >&2
    exit 1
  fi
  echo "--- cargo build --release (target/release/parlor is missing)"
  (cd "$ROOT" && cargo build --release --bin parlor)
fi
if ! command -v redis-server >/dev/null 2>&1; then
  echo "local-cluster: redis-server not found; install it: sudo apt-get install redis-server" >&2
  exit 1
fi
DIR=${DIR:-$(mktemp -d /tmp/parlor-cluster.XXXXXX)}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
SOCKET=$DIR/redis.sock

PIDS=()
stop() {
  trap - INT TERM EXIT
  echo "--- stopping ${#PIDS[@]} processes"
  # Nodes first (they close their sessions with 1001), Redis last.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
  echo "--- stopped; logs in $DIR"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

redis-server --port 0 --unixsocket "$SOCKET" --unixsocketperm 700 --save "" \
  --appendonly no --dir "$DIR" --logfile "$DIR/redis.log" &
REDIS_PID=$!
for _ in $(seq 100); do
  [ -S "$SOCKET" ] && break
  sleep 0.05
done
[ -S "$SOCKET" ] || { echo "local-cluster: redis-server did not start; see $DIR/redis.log" >&2; exit 1; }
PIDS+=("$REDIS_PID")
echo "--- redis-server on $SOCKET (pid $REDIS_PID)"

# Each node may hold as many sessions as the hard open-file limit allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
for i in $(seq 1 "$NODES"); do
  port=$((PORT + i - 1))
  PARLOR_SERVER__BIND=127.0.0.1:$port \
  PARLOR_CLUSTER__REDIS_URL=redis+unix://$SOCKET \
  PARLOR_CLUSTER__NODE_ID=node-$i \
  PARLOR_STORE__PATH=$DIR/node-$i.db \
  RUST_LOG=${RUST_LOG:-info} \
    "$BIN" >"$DIR/node-$i.log" 2>&1 &
  PIDS+=("$!")
  echo "--- node-$i: http://127.0.0.1:$port/ (pid $!, log $DIR/node-$i.log)"
done
echo "--- ${NODES} nodes up; Ctrl-C stops them"
# Wakes for a signal, or when any process ends (then stops the others).
wait -n "${PIDS[@]}" || true
echo "local-cluster: a process ended on its own; see the logs in $DIR" >&2
exit 1
