#!/usr/bin/env bash
# Measures a Parlor cluster on this machine: one redis-server and N nodes
# pinned to core 0, parlor-load pinned to core 1 (release builds).
#
#   bash tests/cluster-bench.sh idle NODES SESSIONS HOLD_SECONDS [RAMP]
#   bash tests/cluster-bench.sh chat NODES ROOMS MEMBERS RATE SECONDS
#
# Prints each node's /healthz and resident memory (idle, taken mid-hold),
# the nodes' cluster counters (chat), parlor-load's report, and the CPU
# Redis used. Every process writes into a fresh folder under /tmp, named
# at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODE=${1:?idle or chat}
NODES=${2:?nodes}
BIN=target/release/parlor
LOAD=target/release/parlor-load
cargo build --release --quiet
DIR=$(mktemp -d /tmp/parlor-cluster-bench.XXXXXX)
BASE=9600
ulimit -n "$(ulimit -Hn)"

taskset -c 0 redis-server --port 0 --unixsocket "$DIR/redis.sock" --save "" --appendonly no \
  --dir "$DIR" --logfile "$DIR/redis.log" &
REDIS=$!
PIDS=()
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  kill "$REDIS" 2>/dev/null || true
  wait "$REDIS" 2>/dev/null || true
  echo "logs and reports: $DIR"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$DIR/redis.sock" ] && break; sleep 0.05; done
URLS=()
for i in $(seq "$NODES"); do
  port=$((BASE + i))
  PARLOR_SERVER__BIND=127.0.0.1:$port PARLOR_STORE__PATH=:memory: \
  PARLOR_CLUSTER__REDIS_URL=redis+unix://$DIR/redis.sock PARLOR_CLUSTER__NODE_ID=n$i \
  RUST_LOG=warn taskset -c 0 "$BIN" >"$DIR/n$i.log" 2>&1 &
  PIDS+=($!)
  URLS+=(--url "ws://127.0.0.1:$port/ws")
done
for i in $(seq "$NODES"); do
  until curl -sf "127.0.0.1:$((BASE + i))/healthz" >/dev/null; do sleep 0.1; done
done
ticks() { awk '{print $14 + $15}' "/proc/$REDIS/stat"; }
HZ=$(getconf CLK_TCK)
BEFORE=$(ticks)
STARTED=$(date +%s.%N)
case "$MODE" in
  idle)
    SESSIONS=${3:?sessions}; HOLD=${4:?hold seconds}; RAMP=${5:-1000}
    (
      sleep $((SESSIONS / RAMP + HOLD / 2))
      for i in $(seq "$NODES"); do curl -s "127.0.0.1:$((BASE + i))/healthz"; echo; done
      for pid in "${PIDS[@]}"; do grep VmRSS "/proc/$pid/status"; done
    ) >"$DIR/mid-hold.txt" &
    taskset -c 1 "$LOAD" idle "${URLS[@]}" --sessions "$SESSIONS" --ramp "$RAMP" --hold "$HOLD" \
      --per-process 10000 --json "$DIR/report.json" || true
    wait
    cat "$DIR/mid-hold.txt"
    ;;
  chat)
    ROOMS=${3:?rooms}; MEMBERS=${4:?members}; RATE=${5:?rate}; SECONDS_=${6:?seconds}
    taskset -c 1 "$LOAD" chat "${URLS[@]}" --rooms "$ROOMS" --members "$MEMBERS" --rate "$RATE" \
      --duration "$SECONDS_" --json "$DIR/report.json" || true
    for i in $(seq "$NODES"); do
      curl -s "127.0.0.1:$((BASE + i))/metrics" | grep -E '^parlor_cluster' | tr '\n' ' '
      echo
    done
    ;;
  *) echo "idle or chat" >&2; exit 2 ;;
esac
AFTER=$(ticks)
ENDED=$(date +%s.%N)
python3 -c "print('redis: %.1f %% of a core' % (100 * ($AFTER - $BEFORE) / $HZ / ($ENDED - $STARTED)))"
