#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run through traps and wait_for, which shellcheck cannot follow
# The system on this machine, as the original article walks through it on Swarm: a broker
# (started or installed if none answers), accountservice and two vipservice replicas with the
# `local` profile, both replicas on one offers database (a SQLite file in the run's folder),
# then the walkthrough: four VIP reads of account 10000, each replica getting two of the
# notifications, both replicas answering the same four offers for 10000, and vip_queue left
# empty.
#
#   scripts/run-local.sh           # run, replay the walkthrough, keep running until Ctrl-C
#   scripts/run-local.sh --check   # replay the walkthrough and stop; non-zero if a step failed
#   scripts/run-local.sh --help    # this text
#
# Environment:
#   ACCOUNT_PORT      accountservice's HTTP port (6767)
#   VIP_PORTS         the two vipservice replicas' HTTP ports, space-separated ("6868 6869")
#   WAIT_SECONDS      the deadline of each wait (60)
#   AMQP_URL          the broker, for ensure-broker.sh and, when set, the services (default:
#                     the local profile's amqp://guest:guest@127.0.0.1:5672/%2f)
#   CARGO_TARGET_DIR  cargo's target folder (target); the services run from its release/
#
# It refuses to start when one of its ports is taken, and names the process holding it.
# Each run has a folder of its own, logs/run-<UTC time>-<pid>/ (logs/latest points to the
# newest): one log per service and data/ with accountservice's store and the offers database
# both replicas share, so two runs never share a file. While it waits and after each step it checks that the services it started are
# alive; when one is not, it prints that service's last ERROR/WARN lines, the end of its log
# and the log's path, and fails. The walkthrough passes only if the processes listening on
# the ports are the ones this run started, and the logs it reads are this run's; as root on
# the local broker (rabbitmqctl), vip_queue's consumers must be this run's two replicas (a
# copy of the system on other ports shares the queue) and vip_queue must end empty.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh
# shellcheck source=lib/net.sh
source scripts/lib/net.sh

check_only=false
case "${1:-}" in
  --check) check_only=true ;;
  -h | --help) usage_text; exit 0 ;;
  "") ;;
  *) echo "run-local: unknown argument $1 (see --help)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "run-local: one argument at most (see --help)" >&2; exit 2; }

ACCOUNT_PORT=${ACCOUNT_PORT:-6767}
read -r -a VIP_PORTS <<<"${VIP_PORTS:-6868 6869}"
WAIT_SECONDS=${WAIT_SECONDS:-60}
bin_dir=${CARGO_TARGET_DIR:-target}/release

step() { printf '==> %s\n' "$*"; }
# fd 3 is stderr, also inside a check whose own output wait_for discards.
exec 3>&2
fail() { printf 'FAILED: %s\n' "$*" >&3; exit 1; }

[ ${#VIP_PORTS[@]} = 2 ] || fail "VIP_PORTS names ${#VIP_PORTS[@]} ports; the walkthrough needs two replicas (e.g. VIP_PORTS=\"6868 6869\")"
ports=("$ACCOUNT_PORT" "${VIP_PORTS[@]}")
for port in "${ports[@]}"; do
  if ! [[ "$port" =~ ^[1-9][0-9]{0,4}$ ]] || [ "$port" -gt 65535 ]; then
    fail "$port is not a TCP port (ACCOUNT_PORT, VIP_PORTS)"
  fi
done
[ "$(printf '%s\n' "${ports[@]}" | sort -u | wc -l)" = 3 ] || fail "ACCOUNT_PORT and VIP_PORTS must be three different ports: ${ports[*]}"

# The services: name, port, log. Started ones get a PID in `pid_of`.
names=(accountservice vipservice-1 vipservice-2)
declare -A port_of=([accountservice]=$ACCOUNT_PORT [vipservice-1]=${VIP_PORTS[0]} [vipservice-2]=${VIP_PORTS[1]})
declare -A pid_of=()

# Refuses ports that something else holds: a service started there would die on
# "Address already in use", and a check could be answered by the other process.
ports_free() {
  local port holders taken=false
  for port in "${ports[@]}"; do
    holders=$(port_holders "$port")
    [ -n "$holders" ] || continue
    printf 'run-local: port %s is taken: %s\n' "$port" "$holders" >&2
    taken=true
  done
  ! $taken || fail "stop what holds the port(s) above, or choose others (ACCOUNT_PORT, VIP_PORTS; see --help)"
}
ports_free

run_name=run-$(date -u +%Y%m%dT%H%M%SZ)-$$
run_dir=logs/$run_name
data_dir=$run_dir/data
mkdir -p "$data_dir"
ln -s "$run_name" "logs/.latest.$$" && mv -Tf "logs/.latest.$$" logs/latest
log_of() { echo "$run_dir/$1.log"; }
step "this run's logs, accountservice's store and outbox and the offers database: $run_dir/ (logs/latest)"

# vipservice keeps no state of its own: both replicas open ONE offers database, this run's
# SQLite file (offers.database_url; the local profile's default is data/vipservice.db).
offers_db=$data_dir/vipservice.db
vip_store_env() { echo "GOBLOG_OFFERS__DATABASE_URL=sqlite://$offers_db?mode=rwc"; }
# accountservice's account store and its outbox (outbox.database_url), this run's too.
account_store_env() {
  echo "GOBLOG_STORE__PATH=$data_dir/accountservice.redb"
  echo "GOBLOG_OUTBOX__DATABASE_URL=sqlite://$data_dir/accountservice-outbox.db?mode=rwc"
}

# True while PID runs (a zombie, dead but not yet reaped, does not count).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# The last error lines of a service's LOG: tracing's ERROR and WARN lines, a panic, and the
# `Error: ... Caused by: ...` that main prints when it returns an error (not its backtrace).
service_errors() {
  awk '
    /^Stack backtrace:/ { in_error = 0; next }
    /^Error: / { in_error = 1 }
    in_error || /(^|[^A-Za-z])(ERROR|WARN)([^A-Za-z]|$)/ || /panicked at/ { if (NF) print }
  ' "$1" | tail -n 12
}

# Prints why service NAME is gone (its exit status, its last ERROR/WARN lines, the end of its
# log and the log's path) and fails.
service_died() {
  local name=$1 pid=${pid_of[$1]} status=${2:-} log errors
  log=$(log_of "$1")
  unset "pid_of[$name]"
  [ -n "$status" ] || { status=0; wait "$pid" 2>/dev/null || status=$?; }
  {
    printf 'FAILED: %s (pid %s, :%s) is not running; exit status %s\n' "$name" "$pid" "${port_of[$name]}" "$status"
    errors=$(service_errors "$log")
    if [ -n "$errors" ]; then
      echo "  its last errors (ERROR/WARN lines, the error it exited with):"
      printf '    %s\n' "${errors//$'\n'/$'\n'    }"
    fi
    echo "  the end of its log (without a stack backtrace):"
    sed '/^Stack backtrace:/,$d' "$log" | tail -n 15 | sed 's/^/    /'
    echo "  log: $log"
  } >&3
  exit 1
}

# Fails if a service this run started is not running any more.
check_alive() {
  local name
  for name in "${!pid_of[@]}"; do
    alive "${pid_of[$name]}" || service_died "$name"
  done
}

# True when the service NAME that this run started is the only listener on its port.
serves_its_port() {
  [ "$(listener_pids "${port_of[$1]}")" = "${pid_of[$1]}" ]
}
# Fails unless every service of this run is the one listening on its port.
check_listeners() {
  local name
  for name in "${names[@]}"; do
    serves_its_port "$name" ||
      fail "port ${port_of[$name]} is served by $(port_holders "${port_of[$name]}" | paste -sd';'), not by $name (pid ${pid_of[$name]}) of this run"
  done
}

stop_services() {
  [ ${#pid_of[@]} -gt 0 ] || return 0
  step "stopping the services (SIGTERM, then waiting for them to finish their work)"
  local name pid deadline
  for pid in "${pid_of[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 30))
  for name in "${!pid_of[@]}"; do
    pid=${pid_of[$name]}
    while alive "$pid"; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "run-local: $name (pid $pid) still runs 30 s after SIGTERM: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.1 # poll interval; the deadline bounds the wait
    done
    wait "$pid" 2>/dev/null || true
  done
  pid_of=()
}
trap stop_services EXIT
trap 'exit 130' INT TERM

# Polls `$@` until it succeeds or WAIT_SECONDS pass; fails at once if a service dies.
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    check_alive
    [ $SECONDS -lt $deadline ] || fail "$what (waited ${WAIT_SECONDS}s; logs in $run_dir/)"
    sleep 0.2 # poll interval; the deadline bounds the wait
  done
  check_alive
}

# NAME is healthy: its /health is 200, answered by the process this run started.
healthy() {
  serves_its_port "$1" &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port_of[$1]}/health")" = 200 ]
}
got_messages() { grep -c 'Got a message' "$(log_of "$1")" 2>/dev/null || true; }

step "making sure RabbitMQ answers"
scripts/ensure-broker.sh
amqp_env=()
[ -z "${AMQP_URL:-}" ] || amqp_env=(GOBLOG_AMQP_SERVER_URL="$AMQP_URL")
url_parse "${AMQP_URL:-amqp://127.0.0.1:5672/}" 5672
broker_is_local=false
if is_loopback "$url_host" && [ "$url_port" = 5672 ]; then broker_is_local=true; fi
if $broker_is_local && [ "$(id -u)" = 0 ] && command -v rabbitmq-plugins >/dev/null 2>&1; then
  if rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null 2>&1; then
    step "RabbitMQ management console: http://127.0.0.1:15672/ (guest/guest)"
  fi
fi

step "building release binaries (cargo build --release -p accountservice -p vipservice, into $bin_dir)"
cargo build --release -p accountservice -p vipservice

# start NAME STORE_SETTING: the service in the background, its log in this run's folder.
# `env` execs the binary, so `$!` is the service's own PID.
start() {
  local name=$1 stores
  mapfile -t stores <<<"$2"
  step "starting $name on :${port_of[$name]} ($(log_of "$name"))"
  env GOBLOG_SERVER_PORT="${port_of[$name]}" "${stores[@]}" "${amqp_env[@]}" \
    "$bin_dir/${name%-[0-9]}" --profile local --config-repo config-repo \
    >"$(log_of "$name")" 2>&1 &
  pid_of[$name]=$!
}
ports_free # once more: the build may have taken minutes
start accountservice "$(account_store_env)"
start vipservice-1 "$(vip_store_env)"
start vipservice-2 "$(vip_store_env)"
for name in "${names[@]}"; do
  wait_for "$name healthy on :${port_of[$name]}" healthy "$name"
  step "$name (pid ${pid_of[$name]}) serves http://127.0.0.1:${port_of[$name]}/health: 200"
done

# A copy of the system on other ports shares vip_queue: its replicas would take some of this
# run's notifications, and its accountservice's would be counted here. vip_queue's consumers
# must be this run's two replicas (each registered once /health is 200).
have_rabbitmqctl=false
if $broker_is_local && [ "$(id -u)" = 0 ] && command -v rabbitmqctl >/dev/null 2>&1; then have_rabbitmqctl=true; fi
vip_queue_field() { rabbitmqctl -q list_queues name "$1" 2>/dev/null | awk '$1 == "vip_queue" { print $2 }'; }
vip_queue_consumers() { rabbitmqctl -q list_consumers queue_name 2>/dev/null | awk '$1 == "vip_queue" { n++ } END { print n + 0 }'; }
two_consumers() {
  local consumers
  consumers=$(vip_queue_consumers)
  [ "$consumers" -le 2 ] ||
    fail "vip_queue has $consumers consumers, not this run's 2: another copy of the system uses this broker (rabbitmqctl list_consumers)"
  [ "$consumers" = 2 ]
}
only_our_consumers() {
  $have_rabbitmqctl || return 0
  wait_for "vip_queue consumed by this run's two replicas (rabbitmqctl list_consumers)" two_consumers
}
only_our_consumers

declare -A before=()
for name in vipservice-1 vipservice-2; do before[$name]=$(got_messages "$name"); done

step "four VIP reads: GET http://127.0.0.1:$ACCOUNT_PORT/accounts/10000"
for _ in 1 2 3 4; do
  serves_its_port accountservice || check_listeners
  body=$(curl -sf "http://127.0.0.1:$ACCOUNT_PORT/accounts/10000") || { check_alive; fail "GET /accounts/10000"; }
  printf '    %s\n' "$body"
done
check_alive

both_got_two() {
  local name
  for name in vipservice-1 vipservice-2; do
    [ $(($(got_messages "$name") - before[$name])) -ge 2 ] || return 1
  done
}
wait_for "each vipservice replica logs two 'Got a message' lines" both_got_two
for name in vipservice-1 vipservice-2; do
  got=$(($(got_messages "$name") - before[$name]))
  [ "$got" = 2 ] || fail "$name got $got notifications, not 2 ($(log_of "$name"))"
  step "$name got 2 notifications"
done

# The offers live in the database both replicas share, this run's own: once the four
# notifications are committed (a moment after their log lines), each replica answers the same
# four offers for 10000.
offers_of() { curl -sf "http://127.0.0.1:${port_of[$1]}/offers/10000"; }
offer_count() { grep -o '"messageId"' <<<"$1" | wc -l; }
same_four_offers() {
  serves_its_port vipservice-1 && serves_its_port vipservice-2 || return 1
  offers_1=$(offers_of vipservice-1) && offers_2=$(offers_of vipservice-2) || return 1
  [ "$(offer_count "$offers_1")" -ge 4 ] && [ "$offers_1" = "$offers_2" ]
}
wait_for "GET /offers/10000 answering the same 4 offers on both replicas ($offers_db)" same_four_offers
[ "$(offer_count "$offers_1")" = 4 ] ||
  fail "GET /offers/10000 lists $(offer_count "$offers_1") offers, not 4, for this run's 4 VIP reads: $offers_1"
step "GET /offers/10000 is the same on :${port_of[vipservice-1]} and :${port_of[vipservice-2]}: 4 offers, e.g. ${offers_1:0:160}…"

queue_empty() { [ "$(vip_queue_field messages)" = 0 ]; }
if $have_rabbitmqctl; then
  wait_for "vip_queue empty" queue_empty
  step "vip_queue is empty: every notification was consumed and acked"
fi

check_alive
check_listeners
only_our_consumers
step "walkthrough passed (served by pids ${pid_of[accountservice]}, ${pid_of[vipservice-1]}, ${pid_of[vipservice-2]} of this run; logs in $run_dir/)"
if $check_only; then
  exit 0
fi
cat <<INFO

  accountservice  http://127.0.0.1:$ACCOUNT_PORT/accounts/10000   /health /info /metrics
  vipservice      http://127.0.0.1:${VIP_PORTS[0]}/offers/10000     http://127.0.0.1:${VIP_PORTS[1]}/offers/10000
  logs, data      $run_dir/  (logs/latest; offers database: $offers_db)

Running until Ctrl-C.
INFO
status=0
wait -n -p ended "${pid_of[@]}" || status=$?
for name in "${!pid_of[@]}"; do
  [ "${pid_of[$name]}" != "${ended:-}" ] || service_died "$name" "$status"
done
fail "a service stopped on its own; see $run_dir/"
