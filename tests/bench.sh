#!/usr/bin/env bash
# Measures Parlor against its peers (Node's ws, the actix examples' chat) on
# this machine, in one run, and prints one comparison table.
#
# Run with: bash tests/bench.sh            (from the repository root)
#   PEERS=bench/peers       where the peers live (default: bench/peers, in this repo)
#   SECONDS_EACH=20         how long each scenario measures
#   IDLE_SESSIONS=10000     idle sessions per server (every server)
#   IDLE_MANY=19000         idle sessions for Parlor's own idle row (two loader processes)
#   RUNS=1                  rounds over all servers; each cell is the median
#
# Scenarios, every server: idle (IDLE_SESSIONS, held SECONDS_EACH), chat at
# 45,000 and 180,000 deliveries a second (100 rooms of 10 members sending 5
# and 20 broadcasts a second each). Parlor only: chat at 45,000 with
# server.write_delay_ms = 10, IDLE_MANY idle sessions, and 1,000 connect-four
# games making one move a second each.
#
# Each server runs pinned to core 0 and parlor-load to core 1 (taskset), on
# loopback only. Figures come from parlor-load's JSON reports; server memory
# and CPU from /proc through --server-pid. The machine is shared and noisy:
# rounds interleave the servers (so a busy spell hits all of them), and with
# RUNS=3 or more each cell is the median of the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every server gets the same open-file limit: the peers do not raise their own.
ulimit -n "$(ulimit -Hn)"
for tool in taskset python3 node npm cargo; do
  command -v "$tool" >/dev/null || { echo "bench.sh needs $tool" >&2; exit 1; }
done
if [ "$(nproc)" -lt 2 ]; then
  echo "bench.sh pins the server and the load to different cores: it needs two" >&2
  exit 1
fi

PEERS=${PEERS:-bench/peers}
SECONDS_EACH=${SECONDS_EACH:-20}
IDLE_SESSIONS=${IDLE_SESSIONS:-10000}
IDLE_MANY=${IDLE_MANY:-19000}
RUNS=${RUNS:-1}
PORT=9390
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "--- building Parlor (release)"
cargo build --release --quiet
LOAD=target/release/parlor-load

echo "--- preparing the peers from $PEERS"
cp -r "$PEERS/node-ws" "$WORK/node-ws"
chmod -R u+w "$WORK/node-ws"   # the source may be read-only
(cd "$WORK/node-ws" && npm ci --silent --no-audit --no-fund)
# The actix example builds into a cache of its own, kept between runs.
PEER_TARGET=${PEER_TARGET:-target/peer-actix-example}
cargo build --release --quiet --manifest-path "$PEERS/actix-example/Cargo.toml" --target-dir "$PEER_TARGET"

start_server() { # server [extra environment for Parlor...]
  local server=$1; shift
  case "$server" in
    parlor) env "$@" PARLOR_SERVER__BIND=127.0.0.1:$PORT PARLOR_STORE__PATH=:memory: RUST_LOG=warn \
              taskset -c 0 target/release/parlor >/dev/null 2>&1 & ;;
    node-ws) (cd "$WORK/node-ws" && PORT=$PORT exec taskset -c 0 node server.js >/dev/null 2>&1) & ;;
    actix-example) TCP_NODELAY=1 PORT=$PORT taskset -c 0 "$PEER_TARGET/release/actix-example" >/dev/null 2>&1 & ;;
  esac
  # taskset (and the subshell, through exec) becomes the server: $! is its pid.
  SERVER_PID=$!
  for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then break; fi
    sleep 0.1
  done
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  sleep 1
}

run() { # round label scenario args... (label: server, or server+variant)
  local round=$1 label=$2 scenario=$3; shift 3
  case "$label" in
    parlor+delay10) start_server parlor PARLOR_SERVER__WRITE_DELAY_MS=10 ;;
    *) start_server "${label%%+*}" ;;
  esac
  taskset -c 1 "$LOAD" "$scenario" --url "ws://127.0.0.1:$PORT/ws" --server-pid "$SERVER_PID" \
    --json "$WORK/$label-$scenario-$round.json" "$@" >/dev/null 2>&1 || true
  stop_server
}

chat() { # round label rate
  run "$1" "$2" chat --rooms 100 --members 10 --rate "$3" --duration "$SECONDS_EACH"
  mv "$WORK/$2-chat-$1.json" "$WORK/$2-chat$3-$1.json" 2>/dev/null || true
}

for round in $(seq "$RUNS"); do
  for server in parlor node-ws actix-example; do
    echo "--- round $round of $RUNS: $server"
    run "$round" "$server" idle --sessions "$IDLE_SESSIONS" --ramp 2000 --hold "$SECONDS_EACH"
    chat "$round" "$server" 5
    chat "$round" "$server" 20
  done
  echo "--- round $round of $RUNS: Parlor alone"
  chat "$round" parlor+delay10 5
  run "$round" parlor+many idle --sessions "$IDLE_MANY" --ramp 2000 --hold "$SECONDS_EACH" --per-process 10000
  run "$round" parlor games --game connect4 --games 1000 --rate 1 --duration "$SECONDS_EACH"
done

python3 - "$WORK" "$RUNS" <<'PY'
import json, os, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
def load(server, scenario):
    reports = []
    for round in range(1, runs + 1):
        try:
            with open(os.path.join(work, f"{server}-{scenario}-{round}.json")) as f:
                reports.append(json.load(f))
        except (OSError, ValueError):
            pass
    return reports
def cell(reports, *path, fmt="{:.2f}", agg=statistics.median):
    values = []
    for value in reports:
        for key in path:
            if not isinstance(value, dict) or value.get(key) is None:
                value = None
                break
            value = value[key]
        if value is not None:
            values.append(value)
    if not values:
        return "-"
    return fmt.format(agg(values))
def kib(reports):
    return cell(reports, "server", "bytes_per_session", fmt="{:.1f}", agg=lambda v: statistics.median(v) / 1024)
rows = [("server", "idle KiB/session", "idle CPU %",
         "chat 45k/s CPU %", "p99 ms", "missing",
         "chat 180k/s CPU %", "p99 ms", "missing", "loader CPU %")]
for server in ("parlor", "node-ws", "actix-example"):
    idle, c45, c180 = load(server, "idle"), load(server, "chat5"), load(server, "chat20")
    rows.append((server, kib(idle), cell(idle, "server", "cpu_percent", fmt="{:.1f}"),
        cell(c45, "server", "cpu_percent", fmt="{:.1f}"), cell(c45, "rtt_ms", "p99"),
        cell(c45, "missing", fmt="{}", agg=max),
        cell(c180, "server", "cpu_percent", fmt="{:.1f}"), cell(c180, "rtt_ms", "p99"),
        cell(c180, "missing", fmt="{}", agg=max), cell(c180, "load_cpu_percent", fmt="{:.1f}")))
widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
print(f"medians of {runs} rounds (evicted and missing: the most in any round)" if runs > 1 else "one round")
for row in rows:
    print("  ".join(value.rjust(width) for value, width in zip(row, widths)))
delay, many, games = load("parlor+delay10", "chat5"), load("parlor+many", "idle"), load("parlor", "games")
print()
print("Parlor alone:")
print(f"  chat 45k/s, server.write_delay_ms = 10: CPU {cell(delay, 'server', 'cpu_percent', fmt='{:.1f}')} %, "
      f"p99 {cell(delay, 'rtt_ms', 'p99')} ms, missing {cell(delay, 'missing', fmt='{}', agg=max)}")
print(f"  idle, {cell(many, 'connected', fmt='{}', agg=min)} sessions: {kib(many)} KiB/session, "
      f"CPU {cell(many, 'server', 'cpu_percent', fmt='{:.1f}')} %, evicted {cell(many, 'evicted', fmt='{}', agg=max)}")
print(f"  1,000 connect-four games, a move a second each: move round trip p50 {cell(games, 'rtt_ms', 'p50')} ms, "
      f"p99 {cell(games, 'rtt_ms', 'p99')} ms, missing {cell(games, 'missing', fmt='{}', agg=max)}, "
      f"CPU {cell(games, 'server', 'cpu_percent', fmt='{:.1f}')} %")
print()
print("A loader CPU % near 100 means the load generator, not the server, was the limit.")
PY
