#!/usr/bin/env bash
# shellcheck disable=SC2317 # cleanup runs through a trap, which shellcheck cannot follow
# Lints both services' /metrics with Prometheus's own checker, `promtool check metrics`
# (names, units, help texts, types, as the exposition format and Prometheus's conventions
# want them): starts release builds of accountservice and vipservice on loopback (`local`
# profile, ports of their own, a unique queue and bus, stores in a temp dir), makes VIP and
# other reads and an unknown path so that every series exists, then checks both expositions.
# Then checks that every goblog metric the Grafana dashboard (docker/grafana/) queries is one
# the services expose (its RabbitMQ metrics are checked on the stack's broker by
# scripts/swarm-e2e.sh), and the stack's Prometheus config (docker/prometheus/) with
# `promtool check config`. Fails on any finding. promtool comes with Debian's `prometheus`
# package, which the script installs as root when it is missing.
#
#   scripts/check-metrics.sh        # env: ACCOUNT_PORT (18767), VIP_PORT (18868), AMQP_URL,
#                                   # CARGO_TARGET_DIR (target)
#   scripts/check-metrics.sh --help # this text
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh
help_or_no_arguments "$@"

if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "check-metrics: installing promtool (Debian's prometheus package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus >/dev/null
  else
    echo "check-metrics: needs promtool (apt-get install prometheus)" >&2
    exit 1
  fi
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
bin=$CARGO_TARGET_DIR/release
account_port=${ACCOUNT_PORT:-18767}
vip_port=${VIP_PORT:-18868}
amqp_url=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
suffix=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
queue=check_metrics_vip.$suffix
bus=check_metrics_bus.$suffix
tmp=$(mktemp -d "${TMPDIR:-/tmp}/goblog-check-metrics.XXXXXX")
pids=()

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
  "$bin/loadtest" --cleanup --amqp-url "$amqp_url" --vip-queue "$queue" --bus-exchange "$bus" ||
    echo "could not delete $queue (and .dlq/.dlx) and $bus" >&2
  if [ "$status" -ne 0 ]; then echo "logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo build --release --quiet -p accountservice -p vipservice -p loadtest
env=(GOBLOG_VIP_QUEUE="$queue" GOBLOG_CONFIG_EVENT_BUS="$bus" GOBLOG_AMQP_SERVER_URL="$amqp_url" GOBLOG_LOG_LEVEL=warn)
env "${env[@]}" GOBLOG_SERVER_PORT="$account_port" GOBLOG_STORE__PATH="$tmp/accountservice.redb" \
  GOBLOG_OUTBOX__DATABASE_URL="sqlite://$tmp/outbox.db?mode=rwc" \
  "$bin/accountservice" --profile local --config-repo config-repo >"$tmp/accountservice.log" 2>&1 &
pids+=($!)
env "${env[@]}" GOBLOG_SERVER_PORT="$vip_port" GOBLOG_OFFERS__DATABASE_URL="sqlite://$tmp/offers.db?mode=rwc" \
  "$bin/vipservice" --profile local --config-repo config-repo >"$tmp/vipservice.log" 2>&1 &
pids+=($!)

deadline=$((SECONDS + 60))
for port in "$account_port" "$vip_port"; do
  until curl -sf -o /dev/null "http://127.0.0.1:$port/health"; do
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "check-metrics: a service exited; see $tmp" >&2; exit 1; }
    done
    [ $SECONDS -lt $deadline ] || { echo "check-metrics: :$port not healthy in 60 s" >&2; exit 1; }
    sleep 0.1 # poll interval; the deadline bounds the wait
  done
done
for path in /accounts/10000 /accounts/10001 /accounts/99999 /nowhere; do
  curl -s -o /dev/null "http://127.0.0.1:$account_port$path"
done
curl -s -o /dev/null "http://127.0.0.1:$vip_port/offers/10000"
# The notification's offer, so that vipservice's series have samples too.
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$vip_port/offers/10000")" = 200 ]; do
  [ $SECONDS -lt $deadline ] || { echo "check-metrics: no offer made in time" >&2; exit 1; }
  sleep 0.1 # poll interval; the deadline bounds the wait
done

failed=0
for service in "accountservice:$account_port" "vipservice:$vip_port"; do
  name=${service%%:*} port=${service##*:}
  curl -sf "http://127.0.0.1:$port/metrics" >"$tmp/$name.metrics"
  if findings=$(promtool check metrics <"$tmp/$name.metrics" 2>&1) && [ -z "$findings" ]; then
    echo "check-metrics: $name /metrics: promtool finds nothing ($(grep -c '^# TYPE' "$tmp/$name.metrics") metrics)"
  else
    echo "check-metrics: $name /metrics:" >&2
    printf '%s\n' "$findings" >&2
    failed=1
  fi
done

# The dashboard's queries, whole (JSON escapes included) and without their label values: a
# matcher queue="vip_queue" names no metric.
dashboard=docker/grafana/goblog-dashboard.json
exprs=$(grep -oE '"expr": "([^"\\]|\\.)*"' "$dashboard" | sed -e 's/^"expr": //' -e 's/\\"[^\\]*\\"//g')
[ -n "$exprs" ] || { echo "check-metrics: found no \"expr\" in $dashboard" >&2; exit 1; }
# Its own metrics, each one a service must expose.
while read -r metric; do
  # A whole name: the sample's name ends at its labels or its value.
  if ! grep -qhE "^$metric(\{| )" "$tmp/accountservice.metrics" "$tmp/vipservice.metrics"; then
    echo "check-metrics: $dashboard queries $metric, which neither service exposes" >&2
    failed=1
  fi
done < <(grep -oE '\b(vip|http)_[a-z_]+' <<<"$exprs" | sort -u)
[ "$failed" -ne 0 ] || echo "check-metrics: every goblog metric $dashboard queries is exposed"
# The broker's come from its rabbitmq_prometheus plugin, which the broker used here need not
# run: scripts/swarm-e2e.sh checks them on the stack's broker, through its Prometheus.
broker=$(grep -oE '\brabbitmq_[a-z_]+' <<<"$exprs" | sort -u | tr '\n' ' ')
[ -z "$broker" ] || echo "check-metrics: broker metrics ${broker% } are checked by scripts/swarm-e2e.sh"
promtool check config docker/prometheus/prometheus.yml >/dev/null || failed=1
exit "$failed"
