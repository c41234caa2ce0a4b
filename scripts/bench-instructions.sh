#!/usr/bin/env bash
# CPU instructions accountservice spends per request, counted by valgrind's callgrind: unlike
# requests per second, the count is the same from one run to the next whatever else the
# machine is doing, so two builds (or two settings) compare on a shared two-core machine.
#
# Starts BIN_DIR/accountservice (default: target/release, built first) under callgrind with a
# throw-away config repo and stores, a unique vip_queue and the quotes service absent, sends
# WARMUP requests, then counts the instructions of every thread while one client sends N
# requests one after another on a kept-alive connection, for each of
#
#   not VIP   GET /accounts/10001
#   VIP       GET /accounts/10000 (outbox commit, publish and its confirm on the real broker)
#
# and prints instructions per request. Background work in the window (metrics upkeep,
# checkpoints, heartbeats) is counted too; it is the same for both builds.
#
#   scripts/bench-instructions.sh [BIN_DIR]   # env: N (2000), WARMUP (500), LOG_LEVEL (warn),
#                                             # EXTRA_ENV ("K=V ..."),
#                                             # KEEP=DIR: keep the counts for callgrind_annotate
#   scripts/bench-instructions.sh --help      # this text
set -euo pipefail
# shellcheck source=lib/usage.sh
source "$(dirname "$0")/lib/usage.sh"
# shellcheck source=lib/broker.sh
source "$(dirname "$0")/lib/broker.sh"
case "${1:-}" in
  -h | --help) usage_text; exit 0 ;;
  -*) echo "bench-instructions: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "bench-instructions: one BIN_DIR at most (see --help)" >&2; exit 2; }
for tool in valgrind callgrind_control curl; do
  command -v "$tool" >/dev/null || { echo "bench-instructions: needs $tool (apt-get install valgrind curl)" >&2; exit 1; }
done

root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
if [ -n "${1:-}" ]; then
  bin="$(cd "$1" && pwd)"
else
  cargo build --quiet --release -p accountservice --manifest-path "$root/Cargo.toml"
  bin="${CARGO_TARGET_DIR:-$root/target}/release"
fi
[ -x "$bin/accountservice" ] || { echo "bench-instructions: no accountservice in $bin" >&2; exit 2; }
n="${N:-2000}"
warmup="${WARMUP:-500}"
port=$((17000 + $$ % 1000))
queue="vip_queue.instrbench$$"
work="$(mktemp -d)"
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  delete_vip_queue "$queue"
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$root/config-repo" "$work/repo"
cat >"$work/repo/accountservice-instrbench.yml" <<EOF
server_port: $port
server_name: accountservice instrbench
amqp_server_url: ${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
quotes:
  url: http://127.0.0.1:1/api/quote?strength=4
log_level: ${LOG_LEVEL:-warn}
vip_queue: $queue
amqp:
  queue_type: classic
store:
  path: $work/account.redb
outbox:
  database_url: sqlite://$work/outbox.db?mode=rwc
EOF

cd "$work"
# shellcheck disable=SC2086 # EXTRA_ENV is a list of assignments
env ${EXTRA_ENV:-} valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
  "$bin/accountservice" --config-repo repo --profile instrbench >>"$work/service.log" 2>&1 &
pid=$!
deadline=$((SECONDS + 120))
until curl -fs "http://127.0.0.1:$port/health" >/dev/null; do
  kill -0 "$pid" 2>/dev/null || { echo "bench-instructions: accountservice exited:" >&2; tail -20 "$work/service.log" >&2; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { echo "bench-instructions: not healthy on port $port after 120 s" >&2; exit 1; }
  sleep 0.2 # poll interval under valgrind; the deadline bounds the wait
done

# requests PATH COUNT: COUNT requests in a row on one connection (curl's URL range).
requests() { curl -fs -o /dev/null "http://127.0.0.1:$port$1?n=[1-$2]"; }
# counted NAME PATH: instructions per request of PATH over $n requests.
counted() {
  requests "$2" "$warmup"
  callgrind_control --instr=on "$pid" >/dev/null 2>&1
  callgrind_control --zero "$pid" >/dev/null 2>&1
  requests "$2" "$n"
  rm -f "$work"/callgrind.out.*
  callgrind_control --dump="$1" "$pid" >/dev/null 2>&1
  callgrind_control --instr=off "$pid" >/dev/null 2>&1
  local total
  total=$(cat "$work"/callgrind.out.* | awk '/^summary:/ { s += $2 } END { print s + 0 }')
  [ "$total" -gt 0 ] || { echo "bench-instructions: callgrind dumped no count" >&2; exit 1; }
  if [ -n "${KEEP:-}" ]; then cat "$work"/callgrind.out.* >"$KEEP/${1// /-}.callgrind"; fi
  rm -f "$work"/callgrind.out.*
  echo "$1: $((total / n)) instructions per request ($n requests, $total in all)"
}
counted "not VIP" /accounts/10001
counted "VIP" /accounts/10000
