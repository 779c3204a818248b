#!/usr/bin/env bash
# Measures a Parlor cluster on this machine: one redis-server and N nodes
# pinned to core 0, parlor-load pinned to core 1 (release builds).
#
#   bash tests/cluster-bench.sh idle NODES SESSIONS HOLD_SECONDS [RAMP]
#   bash tests/cluster-bench.sh chat NODES ROOMS MEMBERS RATE SECONDS
#
# chat takes two optional settings from the environment:
#   IDLE=N         first connects N idle sessions (held through the chat),
#                  and prints the nodes' /healthz once they are all in;
#   NODE_WORKERS=W each node's server.workers (default 1: the nodes share
#                  one core);
#   KILL_AFTER=S   kill -9 the last node S seconds into the chat's
#                  measuring; the chat members fail over (parlor-load
#                  chat --failover) and resume on the other nodes.
#
# Prints each node's /healthz and resident memory (idle, taken mid-hold),
# the nodes' cluster counters (chat), parlor-load's report, and the CPU
# Redis used. Every process writes into a fresh folder under /tmp, named
# at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODE=${1:?idle or chat}
NODES=${2:?nodes}
BIN=${PARLOR_BIN:-target/release/parlor}
LOAD=target/release/parlor-load
[ -n "${PARLOR_BIN:-}" ] || cargo build --release --quiet
DIR=$(mktemp -d /tmp/parlor-cluster-bench.XXXXXX)
# Every node shares core 0: one worker thread each (NODE_WORKERS=0 is one
# per core, the server's default).
NODE_WORKERS=${NODE_WORKERS:-1}
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
  PARLOR_SERVER__WORKERS=$NODE_WORKERS \
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
    CHAT_RAMP=500
    CHAT_START=$((ROOMS * MEMBERS / CHAT_RAMP + 1))
    if [ -n "${IDLE:-}" ]; then
      IDLE_RAMP=${IDLE_RAMP:-2000}
      taskset -c 1 "$LOAD" idle "${URLS[@]}" --sessions "$IDLE" --ramp "$IDLE_RAMP" \
        --hold "$((CHAT_START + SECONDS_ + 30))" --per-process 10000 --json "$DIR/idle.json" \
        >"$DIR/idle.txt" 2>&1 &
      IDLE_RUN=$!
      sleep $((IDLE / IDLE_RAMP + 10))
      echo "with $IDLE idle sessions:"
      for i in $(seq "$NODES"); do curl -s "127.0.0.1:$((BASE + i))/healthz"; echo; done
    fi
    FAILOVER=()
    if [ -n "${KILL_AFTER:-}" ]; then
      FAILOVER=(--failover)
      VICTIM=${PIDS[-1]}
      (
        sleep $((CHAT_START + KILL_AFTER))
        kill -9 "$VICTIM"
        echo "killed node n$NODES (pid $VICTIM) at $(date +%T.%N)"
      ) &
    fi
    taskset -c 1 "$LOAD" chat "${URLS[@]}" --rooms "$ROOMS" --members "$MEMBERS" --rate "$RATE" \
      --ramp "$CHAT_RAMP" --duration "$SECONDS_" "${FAILOVER[@]}" --json "$DIR/report.json" || true
    if [ -n "${IDLE:-}" ]; then
      wait "$IDLE_RUN" || true
      echo "the idle sessions:"
      cat "$DIR/idle.txt"
    fi
    for i in $(seq "$NODES"); do
      curl -s "127.0.0.1:$((BASE + i))/metrics" | grep -E '^parlor_cluster' | tr '\n' ' ' || true
      echo
    done
    ;;
  *) echo "idle or chat" >&2; exit 2 ;;
esac
AFTER=$(ticks)
ENDED=$(date +%s.%N)
python3 -c "print('redis: %.1f %% of a core' % (100 * ($AFTER - $BEFORE) / $HZ / ($ENDED - $STARTED)))"
