#!/usr/bin/env bash
# The system on this machine, as the original article walks through it on Swarm:
# a broker (started or installed if none answers), accountservice on 6767 and two vipservice
# replicas on 6868 and 6869 with the `local` profile, then the walkthrough: four VIP reads of
# account 10000, each replica getting two of the notifications, and vip_queue left empty.
#
#   ./scripts/run-local.sh           # run, replay the walkthrough, keep running until Ctrl-C
#   ./scripts/run-local.sh --check   # replay the walkthrough and stop; non-zero if a step failed
#
# Functions below run through traps and wait_for, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail
cd "$(dirname "$0")/.."

check_only=false
case "${1:-}" in
  --check) check_only=true ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

ACCOUNT_PORT=6767
VIP_PORTS=(6868 6869)
WAIT_SECONDS=${WAIT_SECONDS:-60}
mkdir -p logs data
pids=()

step() { printf '==> %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

stop_services() {
  [ ${#pids[@]} -gt 0 ] || return 0
  step "stopping the services (SIGTERM, then waiting for them to finish their work)"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap stop_services EXIT
trap 'exit 130' INT TERM

# Polls `$@` until it succeeds or WAIT_SECONDS pass.
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "$what (waited ${WAIT_SECONDS}s)"
    sleep 0.2 # poll interval; the deadline bounds the wait
  done
}

healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health")" = 200 ]; }
got_messages() { grep -c 'Got a message' "$1" 2>/dev/null || true; }

step "making sure RabbitMQ answers"
scripts/ensure-broker.sh
if [ "$(id -u)" = 0 ] && command -v rabbitmq-plugins >/dev/null 2>&1; then
  if rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null 2>&1; then
    step "RabbitMQ management console: http://127.0.0.1:15672/ (guest/guest)"
  fi
fi

step "building release binaries"
cargo build --release --quiet -p accountservice -p vipservice

step "starting accountservice on :$ACCOUNT_PORT (logs/accountservice.log)"
GOBLOG_SERVER_PORT=$ACCOUNT_PORT GOBLOG_STORE__PATH=data/accountservice.redb \
  target/release/accountservice --profile local --config-repo config-repo \
  >logs/accountservice.log 2>&1 &
pids+=($!)
for i in "${!VIP_PORTS[@]}"; do
  port=${VIP_PORTS[$i]}
  step "starting vipservice replica $((i + 1)) on :$port (logs/vipservice-$((i + 1)).log)"
  GOBLOG_SERVER_PORT=$port GOBLOG_STORE__PATH=data/vipservice-$((i + 1)).redb \
    target/release/vipservice --profile local --config-repo config-repo \
    >"logs/vipservice-$((i + 1)).log" 2>&1 &
  pids+=($!)
done
for port in $ACCOUNT_PORT "${VIP_PORTS[@]}"; do
  wait_for "service on :$port healthy" healthy "$port"
  step "http://127.0.0.1:$port/health is 200"
done

before=()
for i in "${!VIP_PORTS[@]}"; do before+=("$(got_messages "logs/vipservice-$((i + 1)).log")"); done

step "four VIP reads: GET http://127.0.0.1:$ACCOUNT_PORT/accounts/10000"
for _ in 1 2 3 4; do
  body=$(curl -sf "http://127.0.0.1:$ACCOUNT_PORT/accounts/10000") || fail "GET /accounts/10000"
  printf '    %s\n' "$body"
done

both_got_two() {
  for i in "${!VIP_PORTS[@]}"; do
    [ $(($(got_messages "logs/vipservice-$((i + 1)).log") - before[i])) -ge 2 ] || return 1
  done
}
wait_for "each vipservice replica logs two 'Got a message' lines" both_got_two
# An offer is made once the claim ledger has ordered its claim: a moment after the log line.
offers_on() { curl -sf "http://127.0.0.1:$1/offers/10000" >/dev/null; }
for i in "${!VIP_PORTS[@]}"; do
  got=$(($(got_messages "logs/vipservice-$((i + 1)).log") - before[i]))
  [ "$got" = 2 ] || fail "vipservice replica $((i + 1)) got $got notifications, not 2"
  wait_for "vipservice replica $((i + 1)) lists offers for 10000" offers_on "${VIP_PORTS[$i]}"
  offers=$(curl -sf "http://127.0.0.1:${VIP_PORTS[$i]}/offers/10000") || fail "GET /offers/10000 on replica $((i + 1))"
  step "vipservice replica $((i + 1)) got 2 notifications; its offers for 10000: ${offers:0:160}…"
done

queue_empty() {
  [ "$(rabbitmqctl -q list_queues name messages 2>/dev/null | awk '$1 == "vip_queue" { print $2 }')" = 0 ]
}
if [ "$(id -u)" = 0 ] && command -v rabbitmqctl >/dev/null 2>&1; then
  wait_for "vip_queue empty" queue_empty
  step "vip_queue is empty: every notification was consumed and acked"
fi

step "walkthrough passed"
if $check_only; then
  exit 0
fi
cat <<INFO

  accountservice  http://127.0.0.1:$ACCOUNT_PORT/accounts/10000   /health /info /metrics
  vipservice      http://127.0.0.1:${VIP_PORTS[0]}/offers/10000     http://127.0.0.1:${VIP_PORTS[1]}/offers/10000
  logs            logs/

Running until Ctrl-C.
INFO
wait -n "${pids[@]}" || true
fail "a service stopped on its own; see logs/"
