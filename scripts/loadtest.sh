#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions run through traps and background jobs, which shellcheck cannot follow
# End-to-end load and fault scenarios: starts the system like run-local.sh (release binaries,
# 1 accountservice + 2 vipservice, `local` profile) on ports of its own, with a unique work
# queue and bus exchange, VIP accounts 10000-10049, accountservice's store in a temp dir and a
# fresh offers database that both vipservice replicas share (OFFERS_DATABASE=sqlite: one file
# in the temp dir, the default; OFFERS_DATABASE=postgres: a database of its own on PG_URL's
# server, dropped at the end); runs the scenario with the `loadtest` member, which reconciles
# every accepted VIP read against the offers table in one query; stops everything and deletes
# its queues.
#
#   scripts/loadtest.sh steady          [--seconds N]  # N/2 s of 1-in-10 VIP reads, N/2 s VIP-only
#   scripts/loadtest.sh consumer-crash  [--seconds N]  # SIGKILL vipservice 2 at N/3, restart 5 s later
#   scripts/loadtest.sh both-consumers-crash [--seconds N]  # SIGKILL both vipservices at N/3, restart 5 s later
#   scripts/loadtest.sh account-sigterm [--seconds N]  # SIGTERM accountservice at N/3, restart 2 s later
#   scripts/loadtest.sh account-sigkill [--seconds N]  # SIGKILL accountservice at N/4 (broker healthy),
#                                                      # and at N/2 + 2 s inside a 6 s broker blackhole
#   scripts/loadtest.sh disk-full       [--seconds N]  # the outbox's 16 MB disk full from N/3 for 5 s
#                                                      # (half the reads VIP)
#   scripts/loadtest.sh poison          [--seconds N]  # 1% garbage injected straight into the queue
#   scripts/loadtest.sh broker-restart  [--seconds N]  # rabbitmqctl stop_app at N/3, 5 s, start_app
#   scripts/loadtest.sh memory-alarm    [--seconds N]  # memory watermark tiny for 5 s, then restored
#   scripts/loadtest.sh database-restart [--seconds N] # PostgreSQL stopped at N/3 for DATABASE_OUTAGE_SECONDS (10)
#   scripts/loadtest.sh node-loss       [--seconds N]  # 3-node cluster: SIGKILL the node leading the queue at N/4,
#                                                      # start it 3 s later; then accountservice's node, likewise
#   scripts/loadtest.sh rolling-restart [--seconds N]  # 3-node cluster: from N/4 each node stopped and started in
#                                                      # turn, the next once its queue member is online again
#
# --compare (any scenario): first measures the raw broker with the workspace member raw-lapin
# (bench/raw-lapin: lapin alone, built with `cargo build --release -p raw-lapin`): publish
# with confirms into a quorum queue and consume with an ack per message (its consume figure
# uses a durable classic queue), and loadtest prints goblog-rs against those limits.
# A table against the Go original is always printed.
#
# broker-restart and memory-alarm disturb every client of the broker: they run only with
# ALLOW_BROKER_DISRUPTION=1. They record the outage (`down`/`back`, ms since the epoch) for
# loadtest, which reports the HTTP errors during it and the seconds from the broker back to
# the first offer committed. Whatever ends the script (done, failure, Ctrl-C), the broker is
# left as found: started again, or the watermark it had put back.
#
# account-sigkill reaches the broker through a proxy of loadtest's own (`loadtest --proxy`),
# which it blackholes: notifications accepted while nothing answers wait in the outbox, and
# the SIGKILL there must lose none of them. disk-full mounts a tmpfs for accountservice's
# outbox (needs root) and fills it: VIP reads are refused with 503 (counted) once the outbox
# needs space it cannot get (SQLite goes on inside what its files already hold, so some runs
# refuse none), other reads must all succeed, and every read accepted must become an offer.
#
# database-restart stops the shared PostgreSQL cluster (pg_ctlcluster) and needs
# OFFERS_DATABASE=postgres and ALLOW_DATABASE_DISRUPTION=1; whatever ends the script, the
# cluster is started again.
#
# node-loss and rolling-restart run on a RabbitMQ cluster of their own, never on AMQP_URL's
# broker: `loadtest cluster` starts 3 nodes of this machine's rabbitmq-server on ports and
# node names of their own (test-support's Cluster; needs root; about 10 s a node to boot;
# RabbitMQ 4.0 with TEST_RABBITMQ_ROOT, see scripts/ensure-rabbitmq4-root.sh), the services
# get the nodes' URLs as their `amqp_server_url` list, and loadtest inspects and cleans the
# queues through them. The faults are loadtest's too (its `schedule` module), begun when the
# load starts; the load goes on past N s until the last fault's node is back with its queue
# member online, and the report gives, per fault, the HTTP errors until then, the seconds
# from the fault to the first offer committed after it and to the first offer of a read made
# after it, and the slowest read → offer of the reads made meanwhile. Whatever ends the
# script, every node is killed and its files removed.
# CLUSTER_NODES=K runs another scenario on a K-node cluster of its own the same way, without
# faults (not those that act on AMQP_URL's broker: broker-restart, memory-alarm,
# account-sigkill, --compare); scripts/bench-cluster.sh runs steady on 1 node and on 3.
#
# Every scenario reports the longest stretch without a VIP read answered 200 (the goal is 5 s
# at most, whatever fails; not asserted).
#
# Exit status: the loadtest's, non-zero if any read is lost, any message id has two offers
# (the offers' primary key leaves no room for one, in any scenario), or the pipeline did not
# drain; non-zero too if the fault itself failed. The last line of output is the JSON report.
#
# Environment: CONCURRENCY (32), RATE (unbounded), DRAIN_SECONDS (60), LOG_LEVEL (info),
# ACCOUNT_PORT (17767), VIP_PORTS ("17868 17869"), AMQP_URL, KEEP_TMP=1 keeps the temp dir
# (logs, stores), COMPARE_MESSAGES (50000 per raw-lapin run, 3 runs, median), CARGO_TARGET_DIR
# (target; the binaries run from its release/), CLUSTER_NODES (3 for node-loss and
# rolling-restart, none otherwise), TEST_RABBITMQ_ROOT (the cluster's RabbitMQ, see above).
#
#   scripts/loadtest.sh --help      # this text
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 steady|consumer-crash|both-consumers-crash|account-sigterm|account-sigkill|disk-full|poison|broker-restart|memory-alarm|database-restart|node-loss|rolling-restart [--seconds N] [--compare] (see --help)" >&2; exit 2; }
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh
case "${1:-}" in
  -h | --help) usage_text; exit 0 ;;
esac
[ $# -ge 1 ] || usage
scenario=$1; shift
seconds=20
compare=
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) [ $# -ge 2 ] || usage; seconds=$2; shift 2 ;;
    --compare) compare=1; shift ;;
    *) usage ;;
  esac
done
offers_database=${OFFERS_DATABASE:-sqlite}
case "$offers_database" in sqlite|postgres) ;; *) echo "OFFERS_DATABASE must be sqlite or postgres" >&2; exit 2 ;; esac
# Nodes of a RabbitMQ cluster of the run's own, or none: AMQP_URL's broker.
cluster_nodes=${CLUSTER_NODES:-}
case "$scenario" in
  steady|consumer-crash|both-consumers-crash|account-sigterm|account-sigkill|poison) ;;
  node-loss|rolling-restart) cluster_nodes=${cluster_nodes:-3} ;;
  disk-full)
    [ "$(id -u)" = 0 ] || { echo "$scenario mounts a tmpfs for the outbox: run it as root" >&2; exit 2; } ;;
  database-restart)
    [ "$offers_database" = postgres ] ||
      { echo "$scenario restarts PostgreSQL: set OFFERS_DATABASE=postgres" >&2; exit 2; }
    [ "${ALLOW_DATABASE_DISRUPTION:-}" = 1 ] ||
      { echo "$scenario stops the shared PostgreSQL: set ALLOW_DATABASE_DISRUPTION=1" >&2; exit 2; } ;;
  broker-restart|memory-alarm)
    [ "${ALLOW_BROKER_DISRUPTION:-}" = 1 ] ||
      { echo "$scenario stops or blocks the shared broker: set ALLOW_BROKER_DISRUPTION=1" >&2; exit 2; } ;;
  *) usage ;;
esac
if [ -n "$cluster_nodes" ]; then
  [ "$(id -u)" = 0 ] ||
    { echo "$scenario runs a RabbitMQ cluster of its own, whose nodes run as user rabbitmq: run it as root" >&2; exit 2; }
  case "$scenario" in
    broker-restart|memory-alarm|account-sigkill)
      echo "$scenario acts on AMQP_URL's broker: not on a cluster (CLUSTER_NODES)" >&2; exit 2 ;;
  esac
  [ -z "$compare" ] || { echo "--compare measures AMQP_URL's broker: not on a cluster (CLUSTER_NODES)" >&2; exit 2; }
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
bin=$CARGO_TARGET_DIR/release
account_port=${ACCOUNT_PORT:-17767}
read -r -a vip_ports <<<"${VIP_PORTS:-17868 17869}"
amqp_url=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
suffix=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
queue=loadtest_vip.$suffix
bus=loadtest_bus.$suffix
tmp=$(mktemp -d "${TMPDIR:-/tmp}/goblog-loadtest.XXXXXX")
pg_url=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
case "$offers_database" in
  sqlite) database_url="sqlite://$tmp/vipservice.db?mode=rwc" ;;
  postgres)
    pg_database=loadtest_$suffix
    database_url="${pg_url%/*}/$pg_database" ;;
esac

step() { printf '==> %s %s\n' "$(date +%T.%3N)" "$*"; }

# Environment of every service process. Services start as `env ... &` straight from a
# function, so `$!` is the service's own PID (env execs it), never a subshell's. The broker
# is $amqp_url when a service starts (a cluster's nodes once it runs: see below).
service_env=(GOBLOG_VIP_QUEUE="$queue" GOBLOG_CONFIG_EVENT_BUS="$bus"
  GOBLOG_LOG_LEVEL="${LOG_LEVEL:-info}")

# What accountservice reaches the broker and its outbox at (a proxy, a small disk: see below).
account_amqp_url=$amqp_url
outbox_dir=$tmp
start_account() {
  env "${service_env[@]}" GOBLOG_SERVER_PORT="$account_port" GOBLOG_STORE__PATH="$tmp/accountservice.redb" \
    GOBLOG_AMQP_SERVER_URL="$account_amqp_url" \
    GOBLOG_OUTBOX__DATABASE_URL="sqlite://$outbox_dir/accountservice-outbox.db?mode=rwc" \
    "$bin/accountservice" --profile local --config-repo "$tmp/config-repo" \
    >>"$tmp/accountservice.log" 2>&1 &
  echo $! >"$tmp/accountservice.pid"
}

# start_vip N (1-based replica number)
start_vip() {
  local n=$1 port=${vip_ports[$(($1 - 1))]}
  env "${service_env[@]}" GOBLOG_SERVER_PORT="$port" GOBLOG_OFFERS__DATABASE_URL="$database_url" \
    GOBLOG_AMQP_SERVER_URL="$amqp_url" "$bin/vipservice" --profile local --config-repo "$tmp/config-repo" \
    >>"$tmp/vipservice-$n.log" 2>&1 &
  echo $! >"$tmp/vipservice-$n.pid"
}

pid_of() { cat "$tmp/$1.pid"; }

healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/health")" = 200 ]; }
wait_healthy() {
  local deadline=$((SECONDS + 60))
  until healthy "$1"; do
    [ $SECONDS -lt $deadline ] || { echo "service on :$1 not healthy after 60 s; see $tmp" >&2; return 1; }
    sleep 0.2 # poll interval; the deadline bounds the wait
  done
}

cleanup() {
  local status=$?
  [ -z "${loadtest_pid:-}" ] || kill -TERM "$loadtest_pid" 2>/dev/null || true
  # The fault first: its own traps put the broker back before anything else happens.
  if [ -n "${fault_pid:-}" ]; then
    kill -TERM "$fault_pid" 2>/dev/null || true
    wait "$fault_pid" 2>/dev/null || true
  fi
  for name in accountservice vipservice-1 vipservice-2; do
    if [ -f "$tmp/$name.pid" ]; then
      local pid
      pid=$(pid_of "$name")
      kill -TERM "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  done
  if [ -n "${proxy_pid:-}" ]; then
    kill -TERM "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
  fi
  if [ -n "${small_disk:-}" ]; then
    umount "$small_disk" || echo "could not unmount $small_disk" >&2
  fi
  # On the broker the services used, once they were started; a cluster's nodes, unless it
  # ended already (Ctrl-C reaches it too), its queues with it.
  if [ -n "${queues_on:-}" ] && { [ -z "${cluster_pid:-}" ] || kill -0 "$cluster_pid" 2>/dev/null; }; then
    "$bin/loadtest" --cleanup --amqp-url "$queues_on" --vip-queue "$queue" --bus-exchange "$bus" ||
      echo "could not delete $queue (and .dlq/.dlx) and $bus" >&2
  fi
  # The cluster last: it kills its nodes and waits until none is left.
  if [ -n "${cluster_pid:-}" ]; then
    kill -TERM "$cluster_pid" 2>/dev/null || true
    local cluster_status=0
    wait "$cluster_pid" || cluster_status=$?
    if [ "$cluster_status" -ne 0 ]; then
      echo "loadtest cluster ended with status $cluster_status (see its lines above)" >&2
      [ "$status" -ne 0 ] || status=1
    fi
  fi
  if [ -n "${pg_database:-}" ] && [ "$status" -eq 0 ] && [ "${KEEP_TMP:-}" != 1 ]; then
    psql -q "$pg_url" -c "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" ||
      echo "could not drop the database $pg_database" >&2
  elif [ -n "${pg_database:-}" ]; then
    echo "offers database kept: ${pg_url%/*}/$pg_database" >&2
  fi
  if [ "${KEEP_TMP:-}" = 1 ] || [ "$status" -ne 0 ]; then
    echo "logs and stores kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "building release binaries"
cargo build --release --quiet -p accountservice -p vipservice -p loadtest
# The run uses copies: a build in the same target dir during the run (another checkout sharing
# CARGO_TARGET_DIR) must not swap the binary a restarted service runs.
mkdir "$tmp/bin"
cp "$bin/accountservice" "$bin/vipservice" "$bin/loadtest" "$tmp/bin/"
bin=$tmp/bin

raw=()
if [ -n "$compare" ]; then
  step "building raw-lapin (the raw broker baseline, bench/raw-lapin)"
  cargo build --release -p raw-lapin
  # raw_limit FIGURE: the median msg/s raw-lapin prints for it (multi-thread tokio, as the
  # services run), alone on the broker: the system is not started yet.
  raw_limit() {
    local out
    out=$("$CARGO_TARGET_DIR/release/raw-lapin" --uri "$amqp_url" --multi-thread --runs 3 \
      -n "${COMPARE_MESSAGES:-50000}" --only "$1") || return 1
    printf '%s\n' "$out" >&2
    awk -v f="$1" '$1 == f { for (i = 2; i <= NF; i++) if ($i == "msgs/s") { print $(i - 1); exit } }' <<<"$out"
  }
  step "raw broker limits (raw-lapin, 3 runs each, median)"
  publish_limit=$(raw_limit publish_confirm_quorum)
  consume_limit=$(raw_limit consume_ack_prefetch1000)
  if [ -z "$publish_limit" ] || [ -z "$consume_limit" ]; then
    echo "could not read raw-lapin's figures" >&2
    exit 1
  fi
  raw=(--raw-publish-confirm-quorum "$publish_limit" --raw-consume-ack "$consume_limit")
fi

if [ -n "$cluster_nodes" ]; then
  cluster_args=(--nodes "$cluster_nodes" --vip-queue "$queue" --seconds "$seconds" --urls-file "$tmp/cluster.urls")
  case "$scenario" in
    node-loss|rolling-restart) cluster_args+=(--scenario "$scenario" --faults-file "$tmp/faults") ;;
  esac
  step "a RabbitMQ cluster of $cluster_nodes nodes of its own (loadtest cluster; about 10 s a node)"
  "$bin/loadtest" cluster "${cluster_args[@]}" &
  cluster_pid=$!
  deadline=$((SECONDS + 600))
  until [ -s "$tmp/cluster.urls" ]; do
    kill -0 "$cluster_pid" 2>/dev/null || { echo "loadtest cluster ended before its nodes ran" >&2; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "the cluster's nodes did not run within 600 s" >&2; exit 1; }
    sleep 0.2 # poll interval; the deadline bounds the wait
  done
  amqp_url=$(cat "$tmp/cluster.urls")
  account_amqp_url=$amqp_url
fi

if [ -n "${pg_database:-}" ]; then
  step "offers database $pg_database on ${pg_url%/*}"
  psql -q "$pg_url" -c "CREATE DATABASE $pg_database"
fi
step "config: VIP accounts 10000-10049, queue $queue, bus $bus, logs and stores in $tmp"
cp -r config-repo "$tmp/config-repo"
{
  echo "vip_account_ids:"
  for id in $(seq 10000 10049); do echo "  - \"$id\""; done
} >>"$tmp/config-repo/accountservice-local.yml"

case "$scenario" in
  account-sigkill)
    # The broker's host:port in AMQP_URL, and the same URL through the proxy.
    upstream=$(sed -E 's#^amqps?://([^@/]*@)?([^/]*).*$#\2#' <<<"$amqp_url")
    "$bin/loadtest" --proxy "$upstream" --proxy-address-file "$tmp/proxy.address" >>"$tmp/proxy.log" 2>&1 &
    proxy_pid=$!
    deadline=$((SECONDS + 10))
    until [ -s "$tmp/proxy.address" ]; do
      kill -0 "$proxy_pid" 2>/dev/null || { echo "the proxy did not start; see $tmp/proxy.log" >&2; exit 1; }
      [ $SECONDS -lt $deadline ] || { echo "the proxy gave no address in 10 s" >&2; exit 1; }
      sleep 0.05 # poll interval; the deadline bounds the wait
    done
    account_amqp_url=${amqp_url/"$upstream"/$(cat "$tmp/proxy.address")}
    step "accountservice reaches the broker through the proxy at $(cat "$tmp/proxy.address")" ;;
  disk-full)
    small_disk=$tmp/outbox-disk
    mkdir "$small_disk"
    mount -t tmpfs -o size=16m tmpfs "$small_disk"
    outbox_dir=$small_disk
    step "accountservice's outbox on a 16 MB tmpfs at $small_disk" ;;
esac
queues_on=$amqp_url
start_account
start_vip 1
start_vip 2
for port in "$account_port" "${vip_ports[@]}"; do wait_healthy "$port"; done
step "accountservice :$account_port, vipservice :${vip_ports[0]} and :${vip_ports[1]} healthy"

phases=(--phase "$seconds:1")
extra=()
fault_at=$((seconds / 3))
fault() { :; }
# What the fault must put back if it is stopped half-way; runs when the fault ends, however.
restore() { :; }
# A sleep the fault's TERM trap interrupts at once (bash runs a trap only after a foreground
# command ends, but `wait` returns at the signal).
pause() {
  sleep "$1" &
  pause_pid=$!
  wait "$pause_pid"
  pause_pid=
}
outage_mark() { echo "$1 $(date +%s%3N)" >>"$tmp/outage"; }
case "$scenario" in
  steady) phases=(--phase "$((seconds / 2)):0.1" --phase "$((seconds - seconds / 2)):1") ;;
  poison) extra+=(--poison-fraction 0.01) ;;
  consumer-crash)
    # What the killed replica had committed but not acked is redelivered to the other one,
    # which finds its message id in the inbox table and acks it without a second offer.
    fault() {
      pause "$fault_at"
      step "SIGKILL vipservice-2 ($(pid_of vipservice-2))"
      kill -KILL "$(pid_of vipservice-2)"
      pause 5
      step "restarting vipservice-2"
      start_vip 2
    } ;;
  both-consumers-crash)
    # Nobody consumes for 5 s; everything unacked is redelivered once they are back.
    fault() {
      pause "$fault_at"
      step "SIGKILL vipservice-1 ($(pid_of vipservice-1)) and vipservice-2 ($(pid_of vipservice-2)) at once"
      kill -KILL "$(pid_of vipservice-1)" "$(pid_of vipservice-2)"
      pause 5
      step "restarting both vipservices"
      start_vip 1
      start_vip 2
    } ;;
  database-restart)
    extra+=(--outage-file "$tmp/outage")
    # The cluster serving PG_URL's port, as pg_lsclusters lists it: "VERSION NAME PORT ...".
    pg_port=$(sed -E 's#^.*://([^/]*@)?[^:/]*:?([0-9]*)/.*$#\2#' <<<"$pg_url")
    read -r pg_version pg_cluster _ < <(pg_lsclusters --no-header | awk -v p="${pg_port:-5432}" '$3 == p')
    [ -n "${pg_cluster:-}" ] || { echo "no PostgreSQL cluster on port ${pg_port:-5432} (pg_lsclusters)" >&2; exit 2; }
    fault() {
      pause "$fault_at"
      step "pg_ctlcluster $pg_version $pg_cluster stop (fast)"
      database_stopped=1
      outage_mark down
      pg_ctlcluster "$pg_version" "$pg_cluster" stop -m fast
      step "PostgreSQL stopped; starting it again in ${DATABASE_OUTAGE_SECONDS:-10} s"
      pause "${DATABASE_OUTAGE_SECONDS:-10}"
      step "pg_ctlcluster $pg_version $pg_cluster start"
      pg_ctlcluster "$pg_version" "$pg_cluster" start
      outage_mark back
      database_stopped=
    }
    restore() {
      [ -n "${database_stopped:-}" ] || return 0
      echo "putting PostgreSQL back: pg_ctlcluster $pg_version $pg_cluster start" >&2
      pg_ctlcluster "$pg_version" "$pg_cluster" start
    } ;;
  account-sigterm)
    fault() {
      pause "$fault_at"
      local pid
      pid=$(pid_of accountservice)
      step "SIGTERM accountservice ($pid)"
      kill -TERM "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
      pause 2
      step "restarting accountservice"
      start_account
    } ;;
  account-sigkill)
    sigkill_account() {
      local pid
      pid=$(pid_of accountservice)
      step "SIGKILL accountservice ($pid)"
      kill -KILL "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    }
    fault() {
      pause $((seconds / 4))
      sigkill_account
      pause 2
      step "restarting accountservice"
      start_account
      local gap=$((seconds / 2 - seconds / 4 - 2))
      pause $((gap > 0 ? gap : 0))
      step "broker blackholed (proxy $proxy_pid)"
      blackholed=1
      kill -USR1 "$proxy_pid"
      pause 2
      sigkill_account
      pause 2
      step "restarting accountservice, the broker still blackholed"
      start_account
      pause 2
      step "blackhole over"
      kill -USR2 "$proxy_pid"
      blackholed=
    }
    restore() {
      [ -n "${blackholed:-}" ] || return 0
      kill -USR2 "$proxy_pid" 2>/dev/null || true
    } ;;
  disk-full)
    # Half the reads are not VIP: they must all keep answering while the VIP ones are refused.
    phases=(--phase "$seconds:0.5")
    extra+=(--outage-file "$tmp/outage" --only-vip-refused)
    fault() {
      pause "$fault_at"
      step "filling the outbox's disk"
      outage_mark down
      cat /dev/zero >"$small_disk/ballast" 2>/dev/null || true
      pause 5
      step "emptying the outbox's disk"
      rm -f "$small_disk/ballast"
      outage_mark back
    }
    restore() { rm -f "$small_disk/ballast"; } ;;
  broker-restart)
    extra+=(--outage-file "$tmp/outage")
    fault() {
      pause "$fault_at"
      step "rabbitmqctl stop_app"
      broker_stopped=1
      outage_mark down
      rabbitmqctl -q stop_app
      step "broker stopped; starting it again in 5 s"
      pause 5
      step "rabbitmqctl start_app"
      rabbitmqctl -q start_app
      outage_mark back
      broker_stopped=
    }
    restore() {
      [ -n "${broker_stopped:-}" ] || return 0
      echo "putting the broker back: rabbitmqctl start_app" >&2
      rabbitmqctl -q start_app
    } ;;
  memory-alarm)
    extra+=(--outage-file "$tmp/outage")
    set_watermark() {
      case "$1" in
        \{absolute,*) rabbitmqctl -q set_vm_memory_high_watermark absolute "$(tr -dc 0-9 <<<"$1")" ;;
        *) rabbitmqctl -q set_vm_memory_high_watermark "$1" ;;
      esac
    }
    fault() {
      pause "$fault_at"
      watermark_before=$(rabbitmqctl -q eval 'vm_memory_monitor:get_vm_memory_high_watermark().')
      step "memory watermark 0.0000001 (was $watermark_before)"
      outage_mark down
      rabbitmqctl -q set_vm_memory_high_watermark 0.0000001
      pause 5
      step "memory watermark back to $watermark_before"
      set_watermark "$watermark_before"
      outage_mark back
      watermark_before=
    }
    restore() {
      [ -n "${watermark_before:-}" ] || return 0
      echo "putting the memory watermark back to $watermark_before" >&2
      set_watermark "$watermark_before"
    } ;;
  node-loss|rolling-restart)
    # The faults are loadtest cluster's, begun at SIGUSR1 below; the load goes on until the
    # file says they are over.
    extra+=(--faults-file "$tmp/faults") ;;
esac
# In the background, with traps of its own: cleanup stops it with SIGTERM, and whatever ends
# it, `restore` runs.
run_fault() {
  trap '[ -z "${pause_pid:-}" ] || kill "$pause_pid" 2>/dev/null; restore' EXIT
  trap 'exit 143' TERM
  fault
}
run_fault &
fault_pid=$!

# The load starts now: so does a cluster scenario's fault schedule.
case "$scenario" in node-loss|rolling-restart) kill -USR1 "$cluster_pid" ;; esac
status=0
"$bin/loadtest" --scenario "$scenario" "${phases[@]}" "${extra[@]}" \
  --account-url "http://127.0.0.1:$account_port" \
  --vip-url "http://127.0.0.1:${vip_ports[0]}" --vip-url "http://127.0.0.1:${vip_ports[1]}" \
  --concurrency "${CONCURRENCY:-32}" ${RATE:+--rate "$RATE"} "${raw[@]}" \
  --amqp-url "$amqp_url" --vip-queue "$queue" --drain-seconds "${DRAIN_SECONDS:-60}" \
  --database-url "$database_url" \
  --pid-file "accountservice=$tmp/accountservice.pid" \
  --pid-file "vipservice-1=$tmp/vipservice-1.pid" \
  --pid-file "vipservice-2=$tmp/vipservice-2.pid" &
# In the background so that a TERM reaches cleanup at once (bash runs a trap only once the
# foreground command is over; `wait` returns at the signal).
loadtest_pid=$!
wait "$loadtest_pid" || status=$?
loadtest_pid=
fault_status=0
wait "$fault_pid" || fault_status=$?
fault_pid=
if [ "$fault_status" -ne 0 ]; then
  echo "the $scenario fault failed (status $fault_status)" >&2
  [ "$status" -ne 0 ] || status=1
fi
exit $status
