#!/usr/bin/env bash
# Memory of both services, idle and under load (issues 4 and 5), in one invocation:
# starts vipservice and accountservice from BIN_DIR (default: the static release build that
# the images ship, built by scripts/build-static.sh) with a
# throw-away config repo and stores, a unique vip_queue and quotes-service absent, then prints
# the time from each spawn to its first /health 200 (fresh stores, the broker up), then
# VmRSS / VmHWM (from /proc/<pid>/status, in kB) at these points:
#
#   idle         10 s after both answer /health
#   non-VIP      peak during `wrk -t2 -c50 -d15s` on /accounts/10001
#   VIP          peak during `wrk -t2 -c50 -d15s` on /accounts/10000 and the 10 s after it,
#                vipservice draining vip_queue all along; then the reads wrk counted against
#                accountservice's published / buffered / outbox figures and vipservice's offers
#   idle after   RSS 10 s after that
#
# The peak is reset between phases by writing 5 to /proc/<pid>/clear_refs.
#
#   scripts/bench-memory.sh [BIN_DIR]   # env: DURATION (15s), EXTRA_ENV ("K=V ..."), AMQP_URL
#   scripts/bench-memory.sh --help      # this text
set -euo pipefail
# shellcheck source=lib/usage.sh
source "$(dirname "$0")/lib/usage.sh"
# shellcheck source=lib/broker.sh
source "$(dirname "$0")/lib/broker.sh"
case "${1:-}" in
  -h | --help) usage_text; exit 0 ;;
  -*) echo "bench-memory: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "bench-memory: one BIN_DIR at most (see --help)" >&2; exit 2; }
if [ -n "${1:-}" ] && { [ ! -x "$1/vipservice" ] || [ ! -x "$1/accountservice" ]; }; then
  echo "bench-memory: $1 does not hold the vipservice and accountservice binaries" >&2
  exit 2
fi
command -v wrk >/dev/null || { echo "bench-memory: needs wrk (apt-get install wrk)" >&2; exit 1; }

root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
bin="${1:-$("$root/scripts/build-static.sh")}"
bin="$(cd "$bin" && pwd)" # the services run from a directory of their own
duration="${DURATION:-15s}"
queue="vip_queue.membench$$"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  delete_vip_queue "$queue"
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$root/config-repo" "$work/repo"
cat >"$work/repo/application-membench.yml" <<EOF
amqp_server_url: ${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
quotes:
  url: http://127.0.0.1:1/api/quote?strength=4
log_level: warn
EOF
printf 'server_port: 16767\nserver_name: accountservice membench\nvip_queue: %s\nstore:\n  path: %s\noutbox:\n  database_url: sqlite://%s?mode=rwc\n' \
  "$queue" "$work/account.redb" "$work/outbox.db" >"$work/repo/accountservice-membench.yml"
printf 'server_port: 16868\nserver_name: vipservice membench\nvip_queue: %s\noffers:\n  database_url: sqlite://%s?mode=rwc\n' \
  "$queue" "$work/vipservice.db" >"$work/repo/vipservice-membench.yml"

field() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$2/status"; }
# metric PORT NAME: the value of an unlabelled metric on the service's /metrics.
metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
reset_peak() { for pid in "$@"; do echo 5 >"/proc/$pid/clear_refs"; done; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# wait_health PORT NAME STARTED_MS: polls /health every 5 ms (10 s at most) and prints the
# time from the spawn to the first 200, to within a poll and a curl.
wait_health() {
  for _ in $(seq 2000); do
    if curl -fs "http://127.0.0.1:$1/health" >/dev/null; then
      echo "start: $2 /health 200 after $(($(now_ms) - $3)) ms"
      return 0
    fi
    sleep 0.005
  done
  echo "bench-memory: nothing healthy on port $1" >&2
  exit 1
}

cd "$work"
started=$(now_ms)
# shellcheck disable=SC2086 # EXTRA_ENV is a list of assignments
env ${EXTRA_ENV:-} "$bin/vipservice" --config-repo repo --profile membench >>"$work/services.log" 2>&1 &
vip=$!
pids+=("$vip")
wait_health 16868 vipservice "$started"
started=$(now_ms)
# shellcheck disable=SC2086 # EXTRA_ENV is a list of assignments
env ${EXTRA_ENV:-} "$bin/accountservice" --config-repo repo --profile membench >>"$work/services.log" 2>&1 &
acc=$!
pids+=("$acc")
wait_health 16767 accountservice "$started"

sleep 10
echo "idle: accountservice RSS $(field VmRSS "$acc") kB, vipservice RSS $(field VmRSS "$vip") kB"

reset_peak "$acc" "$vip"
wrk -t2 -c50 -d"$duration" --latency http://127.0.0.1:16767/accounts/10001 | grep -E "Requests/sec|Non-2xx|errors| 50%| 99%"
echo "non-VIP: accountservice peak $(field VmHWM "$acc") kB"

reset_peak "$acc" "$vip"
wrk -t2 -c50 -d"$duration" --latency http://127.0.0.1:16767/accounts/10000 >"$work/wrk-vip.txt"
grep -E "Requests/sec|Non-2xx|errors| 50%| 99%" "$work/wrk-vip.txt"
sleep 10
echo "VIP: accountservice peak $(field VmHWM "$acc") kB, vipservice peak $(field VmHWM "$vip") kB"
# Every VIP read answered is published or in the outbox, and every published one an offer.
reads=$(awk '/requests in/ { print $1 }' "$work/wrk-vip.txt")
non_2xx=$(awk '/Non-2xx/ { print $NF }' "$work/wrk-vip.txt")
published=$(metric 16767 vip_notifications_published_total)
buffered=$(metric 16767 vip_notifications_buffered_total)
outbox=$(metric 16767 vip_outbox_depth)
offers=$(metric 16868 vip_offers_made_total)
echo "VIP reads ${reads:-?} (non-2xx ${non_2xx:-0}): published ${published:-0}, buffered ${buffered:-0}, outbox now ${outbox:-0}, offers ${offers:-0}"
# The outbox's backlog is relayed once the load is over: wait (60 s at most) for it to be empty
# and every publish an offer, and report the peak through that drain as well.
drain_started=$SECONDS
drained=drained
until [ "$(metric 16767 vip_outbox_depth)" = 0 ] &&
  [ "$(metric 16767 vip_notifications_published_total)" = "$(metric 16868 vip_offers_made_total)" ]; do
  [ $((SECONDS - drain_started)) -lt 60 ] || { drained="NOT drained"; break; }
  sleep 0.5 # poll interval; the 60 s deadline bounds the wait
done
echo "$drained after $((SECONDS - drain_started)) s: published $(metric 16767 vip_notifications_published_total), outbox $(metric 16767 vip_outbox_depth), offers $(metric 16868 vip_offers_made_total); accountservice peak through it $(field VmHWM "$acc") kB"

sleep 10
echo "idle after: accountservice RSS $(field VmRSS "$acc") kB, vipservice RSS $(field VmRSS "$vip") kB"
echo "threads: accountservice $(field Threads "$acc"), vipservice $(field Threads "$vip")"
