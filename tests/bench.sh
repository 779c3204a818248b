#!/usr/bin/env bash
# Measures Parlor against its peers (Node's ws, the actix examples' chat) on
# this machine, in one run, and prints one comparison table.
#
# Run with: bash tests/bench.sh            (from the repository root)
#   PEERS=bench/peers       where the peers live (default: bench/peers, in this repo)
#   SECONDS_EACH=20         how long each scenario measures
#   IDLE_SESSIONS=10000     idle sessions per server
#   RUNS=1                  rounds over all servers; each cell is the median
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

start_server() {
  case "$1" in
    parlor) PARLOR_SERVER__BIND=127.0.0.1:$PORT PARLOR_STORE__PATH=:memory: RUST_LOG=warn \
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

run() { # round server scenario args...
  local round=$1 server=$2 scenario=$3; shift 3
  start_server "$server"
  taskset -c 1 "$LOAD" "$scenario" --url "ws://127.0.0.1:$PORT/ws" --server-pid "$SERVER_PID" \
    --json "$WORK/$server-$scenario-$round.json" "$@" >/dev/null 2>&1 || true
  stop_server
}

for round in $(seq "$RUNS"); do
  for server in parlor node-ws actix-example; do
    echo "--- round $round of $RUNS: $server"
    run "$round" "$server" idle --sessions "$IDLE_SESSIONS" --ramp 2000 --hold "$SECONDS_EACH"
    run "$round" "$server" chat --rooms 100 --members 10 --rate 5 --duration "$SECONDS_EACH"
    run "$round" "$server" echo --sessions 1000 --rate 10 --duration "$SECONDS_EACH"
  done
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
rows = [("server", "idle B/session", "idle CPU %", "idle evicted",
         "chat deliv/s", "chat p50 ms", "chat p99 ms", "chat missing", "chat CPU %", "chat load CPU %",
         "echo p50 ms", "echo p99 ms")]
for server in ("parlor", "node-ws", "actix-example"):
    idle, chat, echo = load(server, "idle"), load(server, "chat"), load(server, "echo")
    rows.append((server,
        cell(idle, "server", "bytes_per_session", fmt="{:.0f}"), cell(idle, "server", "cpu_percent", fmt="{:.1f}"),
        cell(idle, "evicted", fmt="{}", agg=max),
        cell(chat, "per_second", fmt="{:.0f}"), cell(chat, "rtt_ms", "p50"), cell(chat, "rtt_ms", "p99"),
        cell(chat, "missing", fmt="{}", agg=max), cell(chat, "server", "cpu_percent", fmt="{:.1f}"),
        cell(chat, "load_cpu_percent", fmt="{:.1f}"),
        cell(echo, "rtt_ms", "p50"), cell(echo, "rtt_ms", "p99")))
widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
print(f"medians of {runs} rounds (evicted and missing: the most in any round)" if runs > 1 else "one round")
for row in rows:
    print("  ".join(value.rjust(width) for value, width in zip(row, widths)))
PY
