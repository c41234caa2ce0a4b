#!/usr/bin/env bash
# The original article's Docker Swarm walkthrough, run for real on this machine, from nothing,
# twice: the article's literal way (`docker service create` of the bare images), ending beside
# the Go original, then the stack this project deploys (production: PostgreSQL, secrets).
#
#  1. a Docker engine: installs Debian's docker.io and starts dockerd if none answers
#  2. a swarm: `docker swarm init` if this engine is in none
#
# The article's way (./copyall.sh --article; the names and the network are the article's):
#  3. ./copyall.sh --article: `docker network create --driver overlay my_network`,
#     `docker service create --name=rabbitmq`, then `docker service rm` + `docker service
#     create --name=accountservice --replicas=1 --network=my_network` (port 6767) and the same
#     for vipservice; no config, secret or volume is given, so the services run on the images'
#     own config-repo (profile article) → all three healthy, /info names profile article
#  4. `curl /accounts/10000` → vipservice logs one "Got a message", vip_queue empty
#  5. `docker service scale vipservice=2` → four VIP reads are split 2/2
#  6. the compatibility mode with the Go original: the Go-P9 vipservice stand-in's image
#     (scripts/build-go-p9-image.sh); `docker service rm vipservice`, the empty durable
#     vip_queue deleted (README, "Moving off the Go original"), `docker service update --args
#     "--config-repo=/config-repo --profile=article,migration" accountservice`, `docker
#     service create --name=vipservice` from the stand-in's image → vip_queue declared as Go
#     declares it; 20 VIP reads, 20 "Got a message" lines in `docker service logs vipservice`
#     (lost 0)
#  7. `docker service rm` of the three, `docker network rm my_network`: port 6767 is free again
#
# The stack (production: PostgreSQL, secrets, rolling updates, Prometheus):
#  8. images and stack: ./copyall.sh --monitoring (static binaries, images, docker stack deploy
#     of docker/docker-stack.yml and docker/docker-stack.monitoring.yml)
#  9. health: the three RabbitMQ nodes (rabbitmq-1, -2, -3) healthy, `rabbitmqctl
#     cluster_status` listing 3 running nodes and each answering AMQP; PostgreSQL (and
#     vipservice's role logging in to it over the overlay network, with the secret's
#     password), accountservice and vipservice, vip_queue a quorum queue with a member on every
#     node, all three online, Prometheus (polled, with a deadline)
# 10. `curl /accounts/10000` → one offer in the offers database, GET /offers/10000 lists it
# 11. Prometheus on 127.0.0.1:9090: /api/v1/targets has every target of jobs accountservice,
#     vipservice and rabbitmq up (one each, three brokers); queries show vip_queue's broker figures (each
#     rabbitmq_* metric the Grafana dashboard uses), the VIP read of step 10 counted by
#     accountservice and its offer by vipservice, and every dashboard query is answered
# 12. `docker service scale vipservice=2` → four VIP reads are split 2/2 across the replicas,
#     and Prometheus scrapes both replicas
# 13. `docker service update --force vipservice` during a paced VIP load → every read answered
#     200 is exactly one offer in the database (rows counted, none twice), and GET
#     /offers/10000 is the same on both new replicas
# 14. `docker service update --force postgres` (a new task on the same volume) → the offers
#     are all still there, and the replicas, back to healthy, record the next one
# 15. the whole broker cluster away (`docker service scale rabbitmq-1=0 rabbitmq-2=0
#     rabbitmq-3=0`), VIP reads answered 200 wait in the outbox table of the stack's
#     PostgreSQL; `docker service update --force accountservice` replaces the task meanwhile;
#     the three back → the outbox empties and every one of those reads is one offer
# 16. `docker kill` of the container of the broker node leading vip_queue (`rabbitmqctl
#     list_queues name leader`) during a paced VIP load (reads answered before the kill and
#     again after the node is back, awaited by count) → another node leads, the killed one
#     comes back (a new task on its volume) and rejoins, vip_queue's three members are online
#     again, and every read answered 200 is exactly one offer (lost 0)
# 17. removes the stack, its volumes and the broker's Erlang cookie secret, and leaves the
#     swarm and stops dockerd only if this script began them; the last line is the total time
#
# The database is read with psql through `docker exec` into the postgres task (it publishes no
# port); each vipservice replica of the stack is reached on its own host-mode port (`docker
# port`); the queue is read with rabbitmqctl in a broker's task; Prometheus's answers are
# read with jq (installed with apt if missing). One line per step; exits
# non-zero at the first failure (cleanup still runs, via a trap, and removes the stack, the
# article's services and my_network, whichever exist then).
#
#   scripts/swarm-e2e.sh                the whole walkthrough
#   scripts/swarm-e2e.sh --broker-only  steps 1-2 and 8-9 for RabbitMQ (the cluster) and
#                                       PostgreSQL only
#                                       (the service images are built and deployed, their
#                                       health is not awaited)
#   scripts/swarm-e2e.sh --article-only steps 1-7 (and the cleanup)
#   scripts/swarm-e2e.sh --help         this text
#
# Environment: GOBLOG_STACK (default goblog-e2e), GOBLOG_CONFIG_REPO (default config-repo/),
# E2E_DEADLINE (seconds to wait for each health state, default 180), LOGS_DIR (default logs/),
# GO_P9_VIPSERVICE_IMAGE (the stand-in's image, default goblog-rs/go-p9-vipservice:latest),
# PROMETHEUS_PORT (Prometheus's host port, default 9090; it must be free here).
# The article's names are fixed: services rabbitmq, accountservice and vipservice and network
# my_network must not exist here before (the script stops at once if one does).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh

export GOBLOG_STACK="${GOBLOG_STACK:-goblog-e2e}"
# The stack file reads it too (docker/docker-stack.monitoring.yml).
export PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
DEADLINE="${E2E_DEADLINE:-180}"
LOGS_DIR="${LOGS_DIR:-logs}"
BROKER_ONLY=false
ARTICLE_ONLY=false
case "${1:-}" in
  --broker-only) BROKER_ONLY=true ;;
  --article-only) ARTICLE_ONLY=true ;;
  -h | --help) usage_text; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--broker-only | --article-only] (see --help)" >&2; exit 2 ;;
esac
mkdir -p "$LOGS_DIR"
STACK="$GOBLOG_STACK"
# The article's service names (no stack prefix) and network.
ARTICLE_SERVICES=(rabbitmq accountservice vipservice)
# The stack's RabbitMQ cluster: one service per node (docker/docker-stack.yml).
BROKERS=(rabbitmq-1 rabbitmq-2 rabbitmq-3)
ARTICLE_NETWORK=my_network
# VIP reads of step 6, each to be one "Got a message" of the Go stand-in.
GO_READS=20

started_dockerd_pid=""
# Whether the default bridge's interface was there before this script started dockerd: dockerd
# makes docker0 and leaves it behind when it stops.
had_docker0=true
initialised_swarm=false
deployed_stack=false
deployed_article=false
# What containers_of prepends to a service's name: none in the article's way, else the stack's.
service_prefix="${STACK}_"
load_pid=""
step_no=0
step_started=$SECONDS

# One line per step: "swarm-e2e [n] what ... ok (Ns)" or "... FAILED: why".
step() {
  step_no=$((step_no + 1))
  step_started=$SECONDS
  printf 'swarm-e2e [%d] %s ... ' "$step_no" "$*"
}
ok() { printf 'ok (%ds)%s\n' "$((SECONDS - step_started))" "${1:+: $1}"; }
fail() {
  printf 'FAILED (%ds): %s\n' "$((SECONDS - step_started))" "$*"
  failure_context
  exit 1
}
# What a failure's reader needs when the logs folder is gone (CI deletes its clone): every task
# the stack ran, a replaced or failed one with its error, and the last lines of each service's
# containers.
failure_context() {
  docker stack ps "$STACK" >/dev/null 2>&1 || return 0
  echo "swarm-e2e: the stack's tasks:"
  docker stack ps "$STACK" --no-trunc --format '  {{.Name}} {{.Node}} {{.DesiredState}} / {{.CurrentState}} {{.Error}}' 2>&1 | head -n 40
  local svc id
  for svc in accountservice vipservice; do
    for id in $(docker ps -aq --filter "label=com.docker.swarm.service.name=${STACK}_$svc"); do
      echo "swarm-e2e: last lines of ${STACK}_$svc container $id ($(docker inspect -f '{{.State.Status}} exit {{.State.ExitCode}} oom {{.State.OOMKilled}}' "$id" 2>&1)):"
      timeout 20 docker logs --tail 15 "$id" 2>&1 | sed 's/^/  /'
    done
  done
}

# Polls "$@" every half second until it succeeds or $DEADLINE seconds pass.
wait_for() {
  local until=$((SECONDS + DEADLINE))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $until ] || return 1
    sleep 0.5 # poll interval; the deadline bounds the wait
  done
}

# Keeps the logs of service $1's containers (per container, bounded: `docker service logs` can
# hang once a task has been replaced) in $2, for whoever reads CI's output.
save_logs() {
  local id
  for id in $(docker ps -aq --filter "label=com.docker.swarm.service.name=$1"); do
    echo "== container $id"
    timeout 20 docker logs "$id" 2>&1
  done >"$2"
}

no_stack_containers() {
  [ -z "$(docker ps -aq --filter "label=com.docker.stack.namespace=$STACK")" ]
}

# `docker stack rm`, then its network and volumes once every container is gone. Prints why it
# failed, if it did.
remove_stack() {
  local svc volume left=""
  for svc in "${BROKERS[@]}" postgres accountservice vipservice prometheus; do
    save_logs "${STACK}_$svc" "$LOGS_DIR/swarm-$svc.log"
  done
  docker stack rm "$STACK" >/dev/null 2>&1
  if ! wait_for no_stack_containers; then
    printf 'containers still there after %ss' "$DEADLINE"
    return 1
  fi
  # `stack rm` removes the network too, unless a container was still attached then.
  if docker network inspect "${STACK}_goblog" >/dev/null 2>&1; then
    docker network rm "${STACK}_goblog" >/dev/null 2>&1
  fi
  for volume in "${STACK}_rabbitmq-1-data" "${STACK}_rabbitmq-2-data" "${STACK}_rabbitmq-3-data" \
    "${STACK}_postgres-data" "${STACK}_prometheus-data"; do
    if docker volume inspect "$volume" >/dev/null 2>&1; then
      docker volume rm "$volume" >/dev/null 2>&1 || left+=" $volume"
    fi
  done
  [ -z "$left" ] || { printf 'could not remove volume(s)%s' "$left"; return 1; }
  # copyall.sh's Erlang cookie: `stack rm` removes it (it carries the stack's label), unless
  # a failed run left one without.
  if docker secret inspect "${STACK}_rabbitmq_erlang_cookie" >/dev/null 2>&1; then
    docker secret rm "${STACK}_rabbitmq_erlang_cookie" >/dev/null 2>&1 ||
      { printf 'could not remove secret %s' "${STACK}_rabbitmq_erlang_cookie"; return 1; }
  fi
}

no_article_containers() {
  local svc
  for svc in "${ARTICLE_SERVICES[@]}"; do
    [ -z "$(docker ps -aq --filter "label=com.docker.swarm.service.name=$svc")" ] || return 1
  done
}

# The article's services (those that exist), then my_network once their containers are gone.
remove_article() {
  local svc
  for svc in "${ARTICLE_SERVICES[@]}"; do
    docker service inspect "$svc" >/dev/null 2>&1 || continue
    save_logs "$svc" "$LOGS_DIR/swarm-article-$svc.log"
    docker service rm "$svc" >/dev/null 2>&1
  done
  if ! wait_for no_article_containers; then
    printf 'containers still there after %ss' "$DEADLINE"
    return 1
  fi
  if docker network inspect "$ARTICLE_NETWORK" >/dev/null 2>&1; then
    docker network rm "$ARTICLE_NETWORK" >/dev/null 2>&1 || { printf 'could not remove %s' "$ARTICLE_NETWORK"; return 1; }
  fi
}

cleanup() {
  local status=$?
  set +e
  # The bounded VIP load of step 13, if a failure cut that step short.
  [ -z "${load_pid:-}" ] || kill "$load_pid" 2>/dev/null
  if [ "$deployed_stack" = true ]; then
    step "docker stack rm $STACK"
    if remove_stack; then ok; else echo; fi
  fi
  if [ "$deployed_article" = true ]; then
    step "docker service rm ${ARTICLE_SERVICES[*]}, docker network rm $ARTICLE_NETWORK"
    if remove_article; then ok; else echo; fi
  fi
  if [ "$initialised_swarm" = true ]; then
    step "docker swarm leave --force (this script initialised it)"
    if docker swarm leave --force >/dev/null 2>&1; then
      # The bridge `swarm init` made for the node's containers outlives the swarm.
      docker network rm docker_gwbridge >/dev/null 2>&1
      ok
    else
      echo "failed"
    fi
  fi
  if [ -n "$started_dockerd_pid" ]; then
    step "stop dockerd (pid $started_dockerd_pid, started by this script)"
    kill "$started_dockerd_pid" 2>/dev/null
    local until=$((SECONDS + 60))
    while kill -0 "$started_dockerd_pid" 2>/dev/null && [ $SECONDS -lt $until ]; do sleep 0.5; done
    if kill -0 "$started_dockerd_pid" 2>/dev/null; then
      echo "still running"
    else
      [ "$had_docker0" = true ] || ip link delete docker0 2>/dev/null
      ok
    fi
  fi
  if [ "$status" = 0 ]; then
    printf 'swarm-e2e: passed in %ds\n' "$SECONDS"
  else
    printf 'swarm-e2e: FAILED after %ds (logs in %s)\n' "$SECONDS" "$LOGS_DIR"
  fi
  exit "$status"
}
trap cleanup EXIT
# A signal (CI's timeout, ^C) ends the current step with a line saying so; the cleanup runs.
trap 'printf "interrupted by a signal\n"; exit 130' INT TERM

# --- what the steps share -------------------------------------------------------------------
containers_of() { docker ps -q --filter "label=com.docker.swarm.service.name=${service_prefix}$1"; }
# True when exactly $2 containers of service $1 run and all are healthy.
service_healthy() {
  local ids id n=0
  ids=$(containers_of "$1")
  for id in $ids; do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ] || return 1
    n=$((n + 1))
  done
  [ "$n" -eq "$2" ]
}
# True once the container whose id begins with $1 no longer runs.
container_gone() { ! docker ps -q --no-trunc | grep -q "^$1"; }
# "Got a message" lines in one container's log: which replica consumed what (the database
# does not record the replica).
messages_in() { docker logs "$1" 2>&1 | grep -c "Got a message" || true; }
# A running broker container: the article's rabbitmq, or the first of the stack's nodes
# whose container answers AMQP (any node of the cluster answers for all its queues).
broker() {
  local svc id
  for svc in rabbitmq "${BROKERS[@]}"; do
    for id in $(containers_of "$svc"); do
      if timeout 10 docker exec "$id" /usr/local/bin/amqp-ping >/dev/null 2>&1; then
        echo "$id"
        return 0
      fi
    done
  done
  return 1
}
# rabbitmqctl "$@" in a running broker container.
broker_ctl() {
  local id
  id=$(broker) || { echo "swarm-e2e: no broker container answers" >&2; return 1; }
  timeout 30 docker exec "$id" rabbitmqctl -q "$@"
}
# Messages ready plus unacknowledged in vip_queue ("" while it does not exist).
queue_depth() {
  broker_ctl list_queues name messages messages_unacknowledged | awk '$1 == "vip_queue" {print $2 + $3}'
}
# The stack's brokers: "running nodes" as `rabbitmqctl cluster_status` lists them.
running_nodes() {
  broker_ctl cluster_status --formatter json | jq -r '.running_nodes | length'
}
# True when the cluster lists 3 running nodes and each node's container answers AMQP.
cluster_up() {
  local svc id
  [ "$(running_nodes)" = 3 ] || return 1
  for svc in "${BROKERS[@]}"; do
    id=$(containers_of "$svc")
    [ -n "$id" ] && timeout 10 docker exec "$id" /usr/local/bin/amqp-ping >/dev/null 2>&1 || return 1
  done
}
# vip_queue's leader node (rabbit@rabbitmq-N), its member count and how many of those members
# run: "leader members online". A node that is away stays a member (members are never removed
# automatically), so only "online" tells that its member is back.
vip_queue_leader() {
  broker_ctl list_queues name leader members online --formatter json |
    jq -r '.[] | select(.name == "vip_queue") | "\(.leader) \(.members | length) \(.online | length)"'
}
# True when vip_queue has a member on each of the three nodes and all three run.
vip_queue_has_3_members() { [ "$(vip_queue_leader | cut -d' ' -f2-)" = "3 3" ]; }
# "rabbit@rabbitmq-N with 3 members, 3 online", for messages.
vip_queue_summary() { vip_queue_leader | awk '{printf "%s with %s members, %s online", $1, $2, $3}'; }
# `docker service scale vipservice=2`, then four VIP reads: true when each replica logged two
# more "Got a message" lines (within the deadline); otherwise prints what each did.
scale_to_two_splits_2_2() {
  local id counts=""
  docker service scale --detach "${service_prefix}vipservice=2" >/dev/null || { echo "docker service scale failed"; return 1; }
  wait_for service_healthy vipservice 2 || { echo "two vipservice replicas not healthy within ${DEADLINE}s"; return 1; }
  declare -gA split_before=()
  for id in $(containers_of vipservice); do split_before[$id]=$(messages_in "$id"); done
  for _ in 1 2 3 4; do
    curl -fsS -o /dev/null http://127.0.0.1:6767/accounts/10000 || { echo "GET /accounts/10000 failed"; return 1; }
  done
  wait_for split_is_2_2 && return 0
  for id in "${!split_before[@]}"; do counts+=" $(($(messages_in "$id") - split_before[$id]))"; done
  echo "split was${counts}"
  return 1
}
split_is_2_2() {
  local id
  for id in "${!split_before[@]}"; do
    [ $(($(messages_in "$id") - split_before[$id])) -eq 2 ] || return 1
  done
}

# --- 1. engine ------------------------------------------------------------------------------
command -v curl >/dev/null 2>&1 || { echo "swarm-e2e: needs curl" >&2; exit 1; }
# Prometheus's API answers JSON (step 11), and so does `rabbitmqctl cluster_status` for the
# stack's brokers (step 9 on): the stack's steps need jq.
if [ "$ARTICLE_ONLY" = false ] && ! command -v jq >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "swarm-e2e: needs jq (apt-get install jq)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >"$LOGS_DIR/apt-jq.log" 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >>"$LOGS_DIR/apt-jq.log" 2>&1; } ||
    { echo "swarm-e2e: apt-get install jq failed (see $LOGS_DIR/apt-jq.log)" >&2; exit 1; }
fi
step "Docker engine"
if docker info >/dev/null 2>&1; then
  ok "already running"
else
  if ! command -v dockerd >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || fail "no dockerd, and installing docker.io needs root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq docker.io >"$LOGS_DIR/apt-docker.log" 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq docker.io >>"$LOGS_DIR/apt-docker.log" 2>&1; } ||
      fail "apt-get install docker.io (see $LOGS_DIR/apt-docker.log)"
  fi
  ip link show docker0 >/dev/null 2>&1 || had_docker0=false
  dockerd >"$LOGS_DIR/dockerd.log" 2>&1 &
  started_dockerd_pid=$!
  wait_for docker info || fail "dockerd did not answer within ${DEADLINE}s (see $LOGS_DIR/dockerd.log)"
  ok "started dockerd $(docker version -f '{{.Server.Version}}'), pid $started_dockerd_pid"
fi

# --- 2. swarm -------------------------------------------------------------------------------
step "swarm"
case "$(docker info -f '{{.Swarm.LocalNodeState}}')" in
  active) ok "already a swarm node" ;;
  inactive)
    # Loopback only: a one-node swarm needs no other address, and sends nothing off the machine.
    docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null ||
      fail "docker swarm init"
    initialised_swarm=true
    ok "initialised (will leave at the end)"
    ;;
  *) fail "swarm state is $(docker info -f '{{.Swarm.LocalNodeState}}')" ;;
esac
if docker stack ls --format '{{.Name}}' | grep -qx "$STACK"; then
  fail "a stack named $STACK already runs here; remove it or set GOBLOG_STACK"
fi
# --- 3-7. the article's way -----------------------------------------------------------------
# The article's own commands, as ./copyall.sh --article runs them (each printed to its log):
# services rabbitmq, accountservice and vipservice on overlay network my_network, from the
# images as built, with no config, secret or volume. Before the stack: both publish port 6767.
if [ "$BROKER_ONLY" = false ]; then
  for svc in "${ARTICLE_SERVICES[@]}"; do
    ! docker service inspect "$svc" >/dev/null 2>&1 ||
      fail "a service named $svc already runs here (the article's way needs the name); remove it first"
  done
  ! docker network inspect "$ARTICLE_NETWORK" >/dev/null 2>&1 ||
    fail "a network named $ARTICLE_NETWORK exists here (the article's way makes it); remove it first"
  service_prefix=""
  export GO_P9_VIPSERVICE_IMAGE="${GO_P9_VIPSERVICE_IMAGE:-goblog-rs/go-p9-vipservice:latest}"

  step "./copyall.sh --article: docker network create --driver overlay my_network, docker service create rabbitmq, accountservice (-p 6767), vipservice"
  deployed_article=true
  ./copyall.sh --article >"$LOGS_DIR/copyall-article.log" 2>&1 || fail "see $LOGS_DIR/copyall-article.log"
  [ "$(docker network inspect -f '{{.Driver}} {{.Scope}}' "$ARTICLE_NETWORK")" = "overlay swarm" ] ||
    fail "$ARTICLE_NETWORK is not a swarm-scoped overlay network"
  ok "$(grep -c '^copyall: docker ' "$LOGS_DIR/copyall-article.log") docker commands, in $LOGS_DIR/copyall-article.log"

  step "rabbitmq, accountservice and vipservice healthy on the images' own config (profile article)"
  for svc in "${ARTICLE_SERVICES[@]}"; do
    wait_for service_healthy "$svc" 1 || fail "$svc not healthy within ${DEADLINE}s"
  done
  info=$(curl -fsS http://127.0.0.1:6767/info) || fail "GET /info"
  grep -q '"profile":"article"' <<<"$info" || fail "accountservice's /info names another profile: $info"
  ok

  step "curl /accounts/10000 → vipservice logs one Got a message, vip_queue empty"
  body=$(curl -fsS http://127.0.0.1:6767/accounts/10000) || fail "GET /accounts/10000"
  grep -q '"id":"10000"' <<<"$body" || fail "unexpected body: $body"
  vip=$(containers_of vipservice)
  consumed_one() { [ "$(messages_in "$vip")" = 1 ] && [ "$(queue_depth)" = 0 ]; }
  wait_for consumed_one ||
    fail "vipservice logged $(messages_in "$vip") Got a message lines, vip_queue holds $(queue_depth)"
  ok

  step "docker service scale vipservice=2 → four VIP reads split 2/2"
  why=$(scale_to_two_splits_2_2) || fail "$why"
  ok

  step "the Go-P9 vipservice stand-in's image (scripts/build-go-p9-image.sh)"
  scripts/build-go-p9-image.sh >"$LOGS_DIR/build-go-p9-image.log" 2>&1 || fail "see $LOGS_DIR/build-go-p9-image.log"
  ok "$(docker image inspect -f '{{.Size}}' "$GO_P9_VIPSERVICE_IMAGE" | awk '{printf "%.1f MB", $1/1e6}')"

  step "compatibility mode: accountservice --profile=article,migration, vipservice the Go-P9 stand-in → $GO_READS VIP reads, $GO_READS Got a message from Go"
  # Entering the mode is leaving it backwards (README, "Moving off the Go original"): our
  # consumers gone and vip_queue empty, the durable queue is deleted, so that the declaration
  # the broker holds next is the Go one, made by whichever side starts first.
  docker service rm vipservice >/dev/null || fail "docker service rm vipservice"
  no_vipservice() { [ -z "$(containers_of vipservice)" ]; }
  wait_for no_vipservice || fail "vipservice's containers still run after ${DEADLINE}s"
  [ "$(queue_depth)" = 0 ] || fail "vip_queue holds $(queue_depth) with its consumers gone"
  broker_ctl delete_queue vip_queue >/dev/null || fail "rabbitmqctl delete_queue vip_queue"
  old_task=$(containers_of accountservice)
  docker service update --detach --quiet --args "--config-repo=/config-repo --profile=article,migration" \
    accountservice >/dev/null || fail "docker service update --args ... accountservice"
  wait_for container_gone "$old_task" || fail "the old accountservice task did not stop within ${DEADLINE}s"
  wait_for service_healthy accountservice 1 || fail "accountservice not healthy in the mode within ${DEADLINE}s"
  docker service create --quiet --detach --no-resolve-image --endpoint-mode dnsrr --name=vipservice \
    --replicas=1 --network="$ARTICLE_NETWORK" "$GO_P9_VIPSERVICE_IMAGE" >/dev/null ||
    fail "docker service create --name=vipservice $GO_P9_VIPSERVICE_IMAGE"
  wait_for service_healthy vipservice 1 || fail "the Go stand-in not healthy within ${DEADLINE}s"
  # durable, type, arguments: Go's declaration, whoever made it. RabbitMQ 4 records the
  # queue type it chose as an argument of a declaration that named none.
  declared=$(broker_ctl list_queues name durable type arguments |
    awk '$1 == "vip_queue" {print $2, $3, $4}')
  declared=${declared/\[\{\"x-queue-type\",\"classic\"\}\]/[]}
  [ "$declared" = "false classic []" ] || fail "vip_queue is declared '$declared' (durable type arguments), not as Go declares it"
  for _ in $(seq "$GO_READS"); do
    curl -fsS -o /dev/null --max-time 5 http://127.0.0.1:6767/accounts/10000 || fail "GET /accounts/10000"
  done
  # Bounded: `docker service logs` follows nothing here, but a stuck daemon must not hang us.
  go_messages() { timeout 20 docker service logs vipservice 2>/dev/null | grep -c "Got a message" || true; }
  go_got_all() { [ "$(go_messages)" -ge "$GO_READS" ] && [ "$(queue_depth)" = 0 ]; }
  wait_for go_got_all ||
    fail "$GO_READS reads answered 200, the Go stand-in logged $(go_messages), vip_queue holds $(queue_depth)"
  got=$(go_messages)
  [ "$got" -eq "$GO_READS" ] || fail "$GO_READS reads answered 200, but the Go stand-in logged $got (some twice)"
  ok "$GO_READS reads answered 200 = $got Got a message in docker service logs vipservice: lost 0; vip_queue $declared"

  step "docker service rm ${ARTICLE_SERVICES[*]}, docker network rm $ARTICLE_NETWORK"
  why=$(remove_article) || fail "$why"
  deployed_article=false
  ok
  service_prefix="${STACK}_"
  [ "$ARTICLE_ONLY" = false ] || exit 0
fi

# --- 8. build and deploy --------------------------------------------------------------------
step "build binaries and images, deploy stack $STACK with Prometheus (./copyall.sh --monitoring)"
# Host mode: a listener already on the port would keep the prometheus task from starting.
if (exec 3<>"/dev/tcp/127.0.0.1/$PROMETHEUS_PORT") 2>/dev/null; then
  fail "something listens on 127.0.0.1:$PROMETHEUS_PORT already (Prometheus's port): stop it or set PROMETHEUS_PORT"
fi
# The article starts with one vipservice and scales it to two (step 12).
export VIPSERVICE_REPLICAS=1
deployed_stack=true
./copyall.sh --monitoring >"$LOGS_DIR/copyall.log" 2>&1 || fail "see $LOGS_DIR/copyall.log"
ok "$(docker image inspect -f '{{.Size}}' "${ACCOUNTSERVICE_IMAGE:-goblog-rs/accountservice:latest}" |
  awk '{printf "accountservice image %.1f MB", $1/1e6}')"

# --- 9. health ------------------------------------------------------------------------------
# Healthy is not yet clustered: a node passes its health check while it boots (the stack file
# says why), so the cluster's own view decides.
step "RabbitMQ cluster: ${BROKERS[*]} healthy, cluster_status lists 3 running nodes, each answers AMQP"
for svc in "${BROKERS[@]}"; do
  wait_for service_healthy "$svc" 1 || fail "$svc not healthy within ${DEADLINE}s"
done
wait_for cluster_up || fail "cluster_status lists $(running_nodes) running nodes after ${DEADLINE}s"
ok "$(for svc in "${BROKERS[@]}"; do printf '%s %s ' "$svc" "$(docker stats --no-stream --format '{{.MemUsage}}' "$(containers_of "$svc")" | cut -d/ -f1)"; done)"

# One SQL query on the offers database, as the postgres user on the task's own socket;
# unaligned, one row per line, '|' between columns.
offers_sql() {
  timeout 30 docker exec "$(containers_of postgres)" psql -X -q -At -v ON_ERROR_STOP=1 -d offers -c "$1"
}
# As vipservice connects: by the service name over the overlay network, role vipservice, the
# password from the secret mounted in the task (it never leaves the container).
vipservice_role_logs_in() {
  # shellcheck disable=SC2016 # expanded by the container's bash
  timeout 30 docker exec "$(containers_of postgres)" bash -c \
    'PGPASSWORD=$(tr -d "\r\n" </run/secrets/offers_db_password) psql -X -At -h postgres -U vipservice -d offers -c "SELECT current_user"' |
    grep -qx vipservice
}
step "PostgreSQL healthy, role vipservice logs in over the overlay network"
wait_for service_healthy postgres 1 || fail "not healthy within ${DEADLINE}s"
vipservice_role_logs_in || fail "psql -h postgres -U vipservice -d offers (password from the secret) did not log in"
ok "$(offers_sql 'SHOW server_version' | cut -d' ' -f1), $(docker stats --no-stream --format '{{.MemUsage}}' "$(containers_of postgres)" | cut -d/ -f1)"

if [ "$BROKER_ONLY" = true ]; then
  step "service steps"
  ok "skipped (--broker-only)"
  exit 0
fi

step "accountservice and vipservice healthy"
wait_for service_healthy accountservice 1 || fail "accountservice not healthy within ${DEADLINE}s"
wait_for service_healthy vipservice 1 || fail "vipservice not healthy within ${DEADLINE}s"
wait_for curl -fsS http://127.0.0.1:6767/health || fail "http://127.0.0.1:6767/health"
# Declared by the first service up, maybe while nodes were still joining: membership
# reconciliation (docker/rabbitmq/cluster.conf) gives it a member on every node.
wait_for vip_queue_has_3_members || fail "vip_queue led by $(vip_queue_summary), not 3 members online"
ok "vip_queue led by $(vip_queue_summary)"

step "Prometheus healthy"
wait_for service_healthy prometheus 1 || fail "not healthy within ${DEADLINE}s (host port $PROMETHEUS_PORT free?)"
wait_for curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" || fail "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
ok "$(docker stats --no-stream --format '{{.MemUsage}}' "$(containers_of prometheus)" | cut -d/ -f1)"

# The host port of a vipservice container's 6868 (host mode, ephemeral): each replica directly.
vip_port() { docker port "$1" 6868/tcp | head -n 1 | sed 's/.*://'; }
# GET /offers/10000 from one vipservice container.
offers_from() { curl -fsS --max-time 10 "http://127.0.0.1:$(vip_port "$1")/offers/10000"; }
# Offers in the database: "rows|distinct message ids".
offer_rows() { offers_sql "SELECT count(*), count(DISTINCT message_id) FROM offers"; }
# Functions, so that wait_for polls them afresh (an argument "$(...)" is evaluated only once).
has_offers() { [ "$(offers_sql "SELECT count(*) FROM offers WHERE account_id = '10000'")" -ge "$1" ]; }

# --- 10. one VIP read → consumed ------------------------------------------------------------
step "curl /accounts/10000 → one offer in the database, /offers/10000 lists it"
body=$(curl -fsS http://127.0.0.1:6767/accounts/10000) || fail "GET /accounts/10000"
grep -q '"id":"10000"' <<<"$body" || fail "unexpected body: $body"
wait_for has_offers 1 || fail "no offer for account 10000 in the database within ${DEADLINE}s"
[ "$(offer_rows)" = "1|1" ] || fail "the database holds $(offer_rows) (rows|distinct ids) offers, not 1|1"
first=$(offers_sql "SELECT message_id FROM offers")
listed=$(offers_from "$(containers_of vipservice)") || fail "GET /offers/10000"
grep -qF "\"$first\"" <<<"$listed" || fail "GET /offers/10000 does not list $first: $listed"
ok "offer $first"

# --- 11. Prometheus scrapes every task and the broker ---------------------------------------
# Prometheus's HTTP API: GET /api/v1/$1 with the rest as curl arguments (query parameters).
prom_api() { curl -fsS --max-time 5 -G "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/$1" "${@:2}"; }
# Its active targets, one "job health" line each.
prom_targets() {
  prom_api targets --data-urlencode state=active | jq -r '.data.activeTargets[] | "\(.labels.job) \(.health)"'
}
# "job up/targets" of every job, for messages.
targets_summary() {
  prom_targets | awk '{n[$1]++; if ($2 == "up") up[$1]++} END {for (j in n) printf "%s %d/%d up; ", j, up[j], n[j]}'
}
# True when jobs accountservice, vipservice and rabbitmq (a target per node) have $1, $2 and
# $3 targets, all up
# (scraped, not just found in DNS).
targets_up() {
  local t job n
  t=$(prom_targets) || return 1
  for job in accountservice:"$1" vipservice:"$2" rabbitmq:"$3"; do
    n=${job#*:} job=${job%%:*}
    [ "$(grep -c "^$job " <<<"$t")" -eq "$n" ] && [ "$(grep -c "^$job up$" <<<"$t")" -eq "$n" ] || return 1
  done
}
# The value of the first series PromQL expression $1 returns ("" when none).
prom_value() { prom_api query --data-urlencode "query=$1" | jq -er '.data.result[0].value[1] // empty'; }
# True when expression $1 returns a series whose value is at least $2.
prom_at_least() {
  local v
  v=$(prom_value "$1") && awk -v v="$v" -v min="$2" 'BEGIN { exit !(v + 0 >= min) }'
}
step "Prometheus at 127.0.0.1:$PROMETHEUS_PORT: every target up, vip_queue's broker metrics, the VIP read counted, every dashboard query answered"
wait_for targets_up 1 1 3 || fail "targets after ${DEADLINE}s: $(targets_summary)"
# Each broker metric the dashboard queries, for vip_queue (label values left out: a queue's
# name is no metric).
dashboard=docker/grafana/goblog-dashboard.json
mapfile -t queries < <(jq -r '.. | .expr? // empty' "$dashboard")
[ "${#queries[@]}" -gt 0 ] || fail "no query found in $dashboard"
mapfile -t broker_metrics < <(printf '%s\n' "${queries[@]}" | sed 's/"[^"]*"//g' | grep -oE '\brabbitmq_[a-z_]+' | sort -u)
[ "${#broker_metrics[@]}" -gt 0 ] || fail "$dashboard queries no rabbitmq_* metric"
for metric in "${broker_metrics[@]}"; do
  wait_for prom_at_least "$metric{queue=\"vip_queue\"}" 0 ||
    fail "no $metric{queue=\"vip_queue\"} series (the brokers' rabbitmq_prometheus plugin, job rabbitmq)"
done
# Step 10's read: counted by accountservice (in the outbox = VIP read), its offer by vipservice.
wait_for prom_at_least 'sum(vip_notifications_buffered_total{job="accountservice"})' 1 ||
  fail "sum(vip_notifications_buffered_total) is '$(prom_value 'sum(vip_notifications_buffered_total)')', not >= 1; accountservice's own /metrics on port 6767: '$(curl -fsS --max-time 5 http://127.0.0.1:6767/metrics 2>&1 | grep '^vip_notifications_buffered_total')'"
wait_for prom_at_least 'sum(vip_offers_made_total{job="vipservice"})' 1 ||
  fail "sum(vip_offers_made_total) is '$(prom_value 'sum(vip_offers_made_total)')', not >= 1"
# The dashboard's every panel query: valid PromQL, answered (a rate may still be empty).
for query in "${queries[@]}"; do
  prom_api query --data-urlencode "query=$query" >/dev/null || fail "the dashboard's query $query was refused"
done
ok "$(targets_summary | sed 's/; $//'); $(IFS=,; echo "${broker_metrics[*]}") for vip_queue; VIP reads $(prom_value 'sum(vip_notifications_buffered_total)'), offers $(prom_value 'sum(vip_offers_made_total)'); ${#queries[@]} dashboard queries answered"

# --- 12. scale to two: four reads split 2/2 -------------------------------------------------
step "docker service scale vipservice=2 → four VIP reads split 2/2, Prometheus scrapes both replicas"
why=$(scale_to_two_splits_2_2) || fail "$why"
# tasks.vipservice is looked up every 5 s (docker/prometheus/prometheus.yml).
wait_for targets_up 1 2 3 || fail "Prometheus's targets after ${DEADLINE}s: $(targets_summary)"
ok

# --- 13. rolling update under load loses nothing --------------------------------------------
load_log="$LOGS_DIR/swarm-e2e-load.log"
stop_load="$LOGS_DIR/.swarm-e2e-stop-load"
# Starts paced VIP reads (~50/s) in the background, on loopback only, one status code a line
# in $load_log, until stop_vip_load; bounded at 3000 reads (a minute or more) even if nothing
# stops them. Notes the offers in the database first (new_rows counts from there).
start_vip_load() {
  rows_before=$(offer_rows)
  rows_before=${rows_before%%|*}
  rm -f "$stop_load"
  (
    for _ in $(seq 3000); do
      [ ! -e "$stop_load" ] || break
      curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 http://127.0.0.1:6767/accounts/10000
      sleep 0.02
    done
  ) >"$load_log" &
  load_pid=$!
}
# Reads answered 200 so far by the load under way.
load_answered() { grep -c '^200$' "$load_log" 2>/dev/null || true; }
# True once the load has had $1 reads answered 200 in all.
load_reached() { [ "$(load_answered)" -ge "$1" ]; }
# Stops them; sets sent (reads answered 200) and other (the rest).
stop_vip_load() {
  touch "$stop_load"
  wait "$load_pid" || true
  load_pid=""
  rm -f "$stop_load"
  sent=$(grep -c '^200$' "$load_log" || true)
  other=$(grep -vc '^200$' "$load_log" || true)
}
# offer.min_interval_ms is 0 (config-repo/vipservice.yml): every notification is an offer.
new_rows() { local r; r=$(offer_rows) && echo $((${r%%|*} - rows_before)); }
all_offered() { [ "$(queue_depth)" = 0 ] && [ "$(new_rows)" -ge "$sent" ]; }
# Every read answered 200 since start_vip_load is exactly one new offer (lost 0, none twice).
each_read_one_offer() {
  wait_for all_offered ||
    fail "$sent reads answered 200, $(new_rows) new offers in the database, vip_queue holds $(queue_depth)"
  rows=$(offer_rows)
  [ "$(new_rows)" -eq "$sent" ] ||
    fail "$sent reads answered 200 ($other not), but $(new_rows) new offers in the database"
  [ "${rows%%|*}" = "${rows#*|}" ] || fail "offers: ${rows%%|*} rows but ${rows#*|} distinct message ids"
}
step "docker service update --force vipservice during VIP load → each 200 one offer, replicas agree"
start_vip_load
update_ok=true
timeout "$DEADLINE" docker service update --quiet --force "${STACK}_vipservice" >/dev/null || update_ok=false
stop_vip_load
[ "$update_ok" = true ] || fail "docker service update --force"
[ "$sent" -gt 0 ] || fail "no VIP read succeeded during the update"
each_read_one_offer
# Both replicas of the new generation, each asked directly: one answer, from the database.
wait_for service_healthy vipservice 2 || fail "two vipservice replicas not healthy after the update"
replicas=()
for id in $(containers_of vipservice); do replicas+=("$id"); done
a=$(offers_from "${replicas[0]}") || fail "GET /offers/10000 from ${replicas[0]}"
b=$(offers_from "${replicas[1]}") || fail "GET /offers/10000 from ${replicas[1]}"
[ "$a" = "$b" ] || fail "GET /offers/10000 differs between the replicas: $(wc -c <<<"$a") vs $(wc -c <<<"$b") bytes"
# Every offer listed is one of the database's (message ids are UUIDs: safe inside quotes).
mapfile -t ids < <(grep -oE '"messageId":"[^"]+"' <<<"$a" | cut -d'"' -f4)
listed=${#ids[@]}
[ "$listed" -gt 0 ] || fail "GET /offers/10000 lists no offer: $a"
in_list=$(printf "'%s'," "${ids[@]}")
in_db=$(offers_sql "SELECT count(*) FROM offers WHERE account_id = '10000' AND message_id IN (${in_list%,})")
[ "$in_db" -eq "$listed" ] || fail "/offers/10000 lists $listed offers, $in_db of them in the database"
ok "$sent reads answered 200 ($other not) = $(new_rows) new offers, ${rows%%|*} rows = ${rows#*|} ids; /offers/10000 equal on both replicas ($listed listed)"

# --- 14. a new database task on the same volume keeps every offer ---------------------------
step "docker service update --force postgres → offers kept, replicas healthy again, next read offered"
rows_before=$(offer_rows)
timeout "$DEADLINE" docker service update --quiet --force "${STACK}_postgres" >/dev/null ||
  fail "docker service update --force postgres"
wait_for service_healthy postgres 1 || fail "postgres not healthy within ${DEADLINE}s"
[ "$(offer_rows)" = "$rows_before" ] || fail "offers were $rows_before (rows|ids), now $(offer_rows)"
wait_for service_healthy vipservice 2 || fail "vipservice replicas not healthy again within ${DEADLINE}s"
curl -fsS -o /dev/null http://127.0.0.1:6767/accounts/10000 || fail "GET /accounts/10000"
wait_for has_offers $((${rows_before%%|*} + 1)) || fail "no offer for the read after the database restart"
ok "${rows_before%%|*} offers kept, $(offer_rows | cut -d'|' -f1) after one more read"

# --- 15. the outbox outlives its task -------------------------------------------------------
step "broker cluster away (${BROKERS[*]} scaled to 0), VIP reads in the outbox, docker service update --force accountservice, brokers back → every read one offer"
outbox_sql() {
  timeout 30 docker exec "$(containers_of postgres)" psql -X -q -At -v ON_ERROR_STOP=1 -d outbox -c "$1"
}
outbox_rows() { outbox_sql "SELECT count(*) FROM outbox"; }
no_broker() {
  local svc
  for svc in "${BROKERS[@]}"; do [ -z "$(containers_of "$svc")" ] || return 1; done
}
# `docker service scale` of the three broker services to $1 replicas each.
scale_brokers() {
  local svc args=()
  for svc in "${BROKERS[@]}"; do args+=("${STACK}_$svc=$1"); done
  docker service scale --detach "${args[@]}" >/dev/null
}
rows_before=$(offer_rows)
rows_before=${rows_before%%|*}
scale_brokers 0 || fail "docker service scale ${BROKERS[*]} to 0"
wait_for no_broker || fail "the brokers' tasks did not stop within ${DEADLINE}s"
held=20
for _ in $(seq "$held"); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:6767/accounts/10000)
  [ "$code" = 200 ] || fail "a VIP read with the broker away answered $code"
done
[ "$(outbox_rows)" -ge "$held" ] || fail "$held reads answered 200, but the outbox table holds $(outbox_rows)"
old_task=$(containers_of accountservice)
docker service update --detach --quiet --force "${STACK}_accountservice" >/dev/null ||
  fail "docker service update --force accountservice"
wait_for container_gone "$old_task" || fail "the old accountservice task did not stop within ${DEADLINE}s"
kept=$(outbox_rows)
[ "$kept" -ge "$held" ] || fail "the old task is gone and the outbox holds $kept of $held"
scale_brokers 1 || fail "docker service scale ${BROKERS[*]} to 1"
wait_for cluster_up || fail "the cluster lists $(running_nodes) running nodes ${DEADLINE}s after the brokers came back"
wait_for service_healthy accountservice 1 || fail "the new accountservice task not healthy within ${DEADLINE}s"
outbox_empty() { [ "$(outbox_rows)" = 0 ]; }
wait_for outbox_empty || fail "the outbox still holds $(outbox_rows) after the broker came back"
held_offered() { [ "$(queue_depth)" = 0 ] && [ "$(new_rows)" -ge "$held" ]; }
wait_for held_offered || fail "$held reads held in the outbox, $(new_rows) new offers"
[ "$(new_rows)" -eq "$held" ] || fail "$held reads held in the outbox, but $(new_rows) new offers"
rows=$(offer_rows)
[ "${rows%%|*}" = "${rows#*|}" ] || fail "offers: ${rows%%|*} rows but ${rows#*|} distinct message ids"
ok "$held reads held ($kept rows after the task was replaced) = $(new_rows) new offers"

# --- 16. the node leading vip_queue killed under load loses nothing ---------------------------
step "docker kill of the broker node leading vip_queue during VIP load → another leads, the node rejoins, each 200 one offer"
wait_for vip_queue_has_3_members || fail "vip_queue led by $(vip_queue_summary) before the kill, not 3 members online"
leader=$(vip_queue_leader | cut -d' ' -f1)
leader_svc=${leader#*@}
case " ${BROKERS[*]} " in *" $leader_svc "*) ;; *) fail "vip_queue's leader '$leader' is none of ${BROKERS[*]}" ;; esac
victim=$(containers_of "$leader_svc")
[ -n "$victim" ] || fail "no container of $leader_svc"
# Reads in flight through the leader before it goes, and again once the node is back: this
# many answered 200 each time (about a second of the load).
load_slice=20
start_vip_load
wait_for load_reached "$load_slice" ||
  { stop_vip_load; fail "the load had $(load_answered) reads answered 200 in ${DEADLINE}s before the kill, not $load_slice"; }
docker kill "$victim" >/dev/null || fail "docker kill $victim ($leader_svc)"
killed_at=$SECONDS
# Another node leads within Raft's election timeout; Swarm starts a new task on the volume.
new_leader() { local l; l=$(vip_queue_leader | cut -d' ' -f1) && [ -n "$l" ] && [ "$l" != "$leader" ]; }
wait_for new_leader || { stop_vip_load; fail "vip_queue still led by '$(vip_queue_leader)' after ${DEADLINE}s"; }
took_over=$(vip_queue_leader | cut -d' ' -f1)
led_after=$((SECONDS - killed_at))
replaced() { local id; id=$(containers_of "$leader_svc") && [ -n "$id" ] && [ "$id" != "$victim" ]; }
wait_for replaced || { stop_vip_load; fail "no new $leader_svc task within ${DEADLINE}s"; }
wait_for cluster_up || { stop_vip_load; fail "the cluster lists $(running_nodes) running nodes ${DEADLINE}s after the kill"; }
back_after=$((SECONDS - killed_at))
back_at=$(load_answered)
wait_for load_reached $((back_at + load_slice)) ||
  { stop_vip_load; fail "$(($(load_answered) - back_at)) reads answered 200 in ${DEADLINE}s after the node came back, not $load_slice"; }
stop_vip_load
wait_for vip_queue_has_3_members || fail "vip_queue led by $(vip_queue_summary) after the node came back, not 3 members online"
each_read_one_offer
ok "$leader_svc killed (container ${victim:0:12}), $took_over took over (seen after ${led_after}s), the node back in the cluster after ${back_after}s; $sent reads answered 200 ($other not) = $(new_rows) new offers, ${rows%%|*} rows = ${rows#*|} ids"

# --- 17. cleanup: the EXIT trap removes the stack and restores the swarm/engine state -------
