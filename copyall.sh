#!/usr/bin/env bash
# Builds everything and deploys it to the Docker Swarm this engine belongs to, as the original
# article's copyall.sh did, made safe: it stops at the first failure, and a service of the
# stack that already runs is updated in place (rolling, per its update_config), never removed
# and re-created, so there is no gap in service. --article does what the article did instead.
#
#   ./copyall.sh               build the static binaries and the images, deploy or update the stack
#   ./copyall.sh --monitoring  the same, with Prometheus (docker/docker-stack.monitoring.yml)
#   ./copyall.sh --article     build, then deploy the article's way instead (below)
#   ./copyall.sh --help        this text
#
# 1. Static release binaries (no libc needed at run time, so the images are FROM scratch).
# 2. Images: accountservice and vipservice from docker/*.Dockerfile, each carrying the
#    config-repo's files at /config-repo (profile `article` by default); RabbitMQ (4.0, from
#    Debian trixie) and PostgreSQL from debootstrapped Debian root file systems
#    (scripts/build-rabbitmq-image.sh and scripts/build-postgres-image.sh, their bases cached;
#    --article needs no PostgreSQL), and with --monitoring Prometheus likewise
#    (scripts/build-prometheus-image.sh).
# 3. The RabbitMQ cluster's Erlang cookie, a Swarm secret (STACK_rabbitmq_erlang_cookie), on
#    the stack's first deploy: 32 bytes from the kernel's random source, base64, piped into
#    `docker secret create` (never written to a file, never committed). An existing one is
#    kept as it is; `docker stack rm` removes it with the stack.
# 4. `docker stack deploy` of docker/docker-stack.yml (creates what is missing, updates changed
#    specs), then `docker service update --image IMAGE --force` for the services that were
#    already running: their image tag is unchanged, so only --force rolls them onto the new
#    binaries. PostgreSQL (one task, one volume: stop-first, so a short outage) is rolled only
#    when its image is not the one its task runs; so is Prometheus, whose image carries its
#    scrape config (docker/prometheus/prometheus.yml), and so is each node of the RabbitMQ
#    cluster (rabbitmq-1, -2, -3), one after the other, each answering AMQP again before the
#    next stops: the other two keep the cluster and its quorum queues available meanwhile.
#
# --monitoring adds docker/docker-stack.monitoring.yml to the stack files: service prometheus
# scrapes both services and RabbitMQ's Prometheus plugin, and publishes its UI and API on
# host port 9090 (PROMETHEUS_PORT); import docker/grafana/goblog-dashboard.json into a Grafana
# that reaches it (README, "Traces, logs and metrics"). A later deploy without --monitoring
# leaves a running prometheus service as it is (docker service rm STACK_prometheus removes it).
#
# --article: the original's copyall.sh, literally, with the images' built-in config (profile
# `article`: RabbitMQ's guest/guest, every store a file in the task, so state goes with it).
# The network (the article's README) and RabbitMQ (its support.sh) only where missing:
#    docker network create --driver overlay my_network
#    docker service create --name=rabbitmq --replicas=1 --network=my_network RABBITMQ_IMAGE
#    docker service rm accountservice                          (if it runs)
#    docker service create --name=accountservice --replicas=1 --network=my_network -p=6767:6767 IMAGE
#    docker service rm vipservice                              (if it runs)
#    docker service create --name=vipservice --replicas=1 --network=my_network IMAGE
# Each command is printed as it runs. `docker service create` returns at once (--detach):
# `docker service ps NAME` shows the task, and Docker's health check its state.
# It differs from the article where this project's sandbox must (README, "Deploying on Docker
# Swarm"): every service gets --endpoint-mode dnsrr and -p=6767:6767 is
# --publish mode=host,target=6767,published=6767 (no virtual-IP balancer or routing mesh
# there); RabbitMQ publishes only its management console, on 15673 (the host's own broker may
# hold 5672 and 15672), and is the image alone: a standalone broker, no cluster (the stack's
# three nodes are given the environment that makes them one); --no-resolve-image, as the
# images are local; and each `service rm` waits for the old task's container to be gone, so
# the new one finds port 6767 free. The stack and --article use the same port, so one runs at
# a time.
#
# Environment: GOBLOG_STACK (stack name, default goblog), ACCOUNTSERVICE_IMAGE,
# VIPSERVICE_IMAGE, RABBITMQ_IMAGE, POSTGRES_IMAGE, PROMETHEUS_IMAGE, GOBLOG_CONFIG_REPO (the
# files the images carry and the stack mounts, default config-repo/), RABBITMQ_MANAGEMENT_PORT
# (rabbitmq-1's console, and the article's broker's; default 15673), RABBITMQ_MANAGEMENT_PORT_2
# and _3 (rabbitmq-2's and -3's, default 15674 and 15675), PROMETHEUS_PORT (default 9090), and
# every variable of the stack files.
# Set GOBLOG_STACK_FILES to deploy more compose files on top (e.g. the config-server one).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=scripts/lib/usage.sh
source scripts/lib/usage.sh
article=false
monitoring=false
case "${1:-}" in
  --article) article=true ;;
  --monitoring) monitoring=true ;;
  -h | --help) usage_text; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--monitoring | --article] (see --help)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "usage: $0 [--monitoring | --article] (see --help)" >&2; exit 2; }

STACK="${GOBLOG_STACK:-goblog}"
export ACCOUNTSERVICE_IMAGE="${ACCOUNTSERVICE_IMAGE:-goblog-rs/accountservice:latest}"
export VIPSERVICE_IMAGE="${VIPSERVICE_IMAGE:-goblog-rs/vipservice:latest}"
export RABBITMQ_IMAGE="${RABBITMQ_IMAGE:-goblog-rs/rabbitmq:latest}"
export POSTGRES_IMAGE="${POSTGRES_IMAGE:-goblog-rs/postgres:latest}"
export PROMETHEUS_IMAGE="${PROMETHEUS_IMAGE:-goblog-rs/prometheus:latest}"
export GOBLOG_CONFIG_REPO="${GOBLOG_CONFIG_REPO:-$PWD/config-repo}"
read -r -a stack_files <<<"${GOBLOG_STACK_FILES:-docker/docker-stack.yml}"
monitoring_file=docker/docker-stack.monitoring.yml
if [ "$monitoring" = true ]; then
  case " ${stack_files[*]} " in
    *" $monitoring_file "*) ;; # GOBLOG_STACK_FILES names it already
    *) stack_files+=("$monitoring_file") ;;
  esac
fi

say() { printf 'copyall: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd, or see scripts/swarm-e2e.sh)"
[ "$(docker info -f '{{.Swarm.LocalNodeState}}')" = active ] ||
  die "this engine is not in a swarm: run 'docker swarm init' first"

[ -d "$GOBLOG_CONFIG_REPO" ] || die "no config-repo at $GOBLOG_CONFIG_REPO (set GOBLOG_CONFIG_REPO)"

# The services of this engine's swarm other than $1 that publish port $2, one name a line.
publishers_of() {
  docker service ls -q | xargs -r docker service inspect \
    -f '{{.Spec.Name}}{{range .Spec.EndpointSpec.Ports}} {{.PublishedPort}}{{end}}' |
    awk -v self="$1" -v port="$2" '$1 != self { for (i = 2; i <= NF; i++) if ($i == port) print $1 }'
}
if [ "$article" = true ]; then
  accountservice_name=accountservice
else
  accountservice_name="${STACK}_accountservice"
fi
others=$(publishers_of "$accountservice_name" 6767)
[ -z "$others" ] || die "port 6767 is published by service(s) $others: remove them first" \
  "(docker stack rm STACK, or docker service rm accountservice for --article)"

say "building static release binaries"
bin_dir=$(scripts/build-static.sh)

# Each image's build context holds only what its Dockerfile adds, not the whole repository.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
build_service_image() {
  local name=$1 image=$2
  rm -rf "${context:?}"/*
  cp "$bin_dir/$name" "$bin_dir/healthchecker" "$context/"
  mkdir "$context/data" "$context/config-repo"
  # The image's built-in settings: a mounted file or a config server overrides them.
  cp "$GOBLOG_CONFIG_REPO"/*.yml "$context/config-repo/"
  # The classic builder: Debian's docker.io engine comes without BuildKit for this client.
  DOCKER_BUILDKIT=0 docker build --quiet -f "docker/$name.Dockerfile" -t "$image" "$context" >/dev/null
  say "built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}'))"
}
build_service_image accountservice "$ACCOUNTSERVICE_IMAGE"
build_service_image vipservice "$VIPSERVICE_IMAGE"
scripts/build-rabbitmq-image.sh

# --- the article's way ------------------------------------------------------------------------
# Prints a command, then runs it quietly: the log shows exactly what the article's commands
# became here.
run() {
  say "$*"
  "$@" >/dev/null
}
# Polls until no container of service $1 is left on this node (bounded: 120 s).
wait_until_gone() {
  local until=$((SECONDS + 120))
  while [ -n "$(docker ps -aq --filter "label=com.docker.swarm.service.name=$1")" ]; do
    [ $SECONDS -lt $until ] || die "the containers of service $1 are still there after 120 s"
    sleep 0.5 # poll interval; the deadline bounds the wait
  done
}
if [ "$article" = true ]; then
  # The sandbox's adjustments, for every service (see the header).
  swarm_args=(--quiet --detach --no-resolve-image --endpoint-mode dnsrr)
  if ! docker network inspect my_network >/dev/null 2>&1; then
    run docker network create --driver overlay my_network
  fi
  if ! docker service inspect rabbitmq >/dev/null 2>&1; then
    run docker service create "${swarm_args[@]}" --name=rabbitmq --replicas=1 --network=my_network \
      --publish "mode=host,target=15672,published=${RABBITMQ_MANAGEMENT_PORT:-15673}" "$RABBITMQ_IMAGE"
  fi
  if docker service inspect accountservice >/dev/null 2>&1; then
    run docker service rm accountservice
    wait_until_gone accountservice
  fi
  run docker service create "${swarm_args[@]}" --name=accountservice --replicas=1 --network=my_network \
    --publish mode=host,target=6767,published=6767 "$ACCOUNTSERVICE_IMAGE"
  if docker service inspect vipservice >/dev/null 2>&1; then
    run docker service rm vipservice
    wait_until_gone vipservice
  fi
  run docker service create "${swarm_args[@]}" --name=vipservice --replicas=1 --network=my_network \
    "$VIPSERVICE_IMAGE"
  say "deployed the article's way. accountservice: http://127.0.0.1:6767/accounts/10000"
  say "vipservice's log (\"Got a message\"): docker service logs vipservice"
  say "RabbitMQ management: http://127.0.0.1:${RABBITMQ_MANAGEMENT_PORT:-15673}/"
  exit 0
fi

# --- the stack --------------------------------------------------------------------------------
scripts/build-postgres-image.sh
[ "$monitoring" = false ] || scripts/build-prometheus-image.sh

# Swarm configs and secrets are immutable: name them after their content, so an edited file
# becomes a new config that the services roll onto, and an unchanged one is reused.
content_version() { cat "$@" | sha256sum | cut -c1-12; }
export GOBLOG_CONFIG_VERSION GOBLOG_SECRETS_VERSION
GOBLOG_CONFIG_VERSION=$(content_version "$GOBLOG_CONFIG_REPO"/*.yml)
GOBLOG_SECRETS_VERSION=$(content_version docker/secrets/*)

# The RabbitMQ nodes' Erlang cookie: made here once per stack, from the kernel's random
# source, straight into the swarm (no file); kept as it is by every later deploy. Labelled as
# the stack's, so `docker stack rm` takes it away with the stack's own secrets.
export RABBITMQ_ERLANG_COOKIE_SECRET="${STACK}_rabbitmq_erlang_cookie"
if ! docker secret inspect "$RABBITMQ_ERLANG_COOKIE_SECRET" >/dev/null 2>&1; then
  head -c 32 /dev/urandom | base64 |
    docker secret create --label "com.docker.stack.namespace=$STACK" "$RABBITMQ_ERLANG_COOKIE_SECRET" - >/dev/null
  say "created secret $RABBITMQ_ERLANG_COOKIE_SECRET (the RabbitMQ cluster's Erlang cookie)"
fi

# Published ports are host-mode (see docker-stack.yml): on a one-node swarm a start-first
# update of accountservice would wait forever for host port 6767, which the old task holds.
if [ -z "${ACCOUNTSERVICE_UPDATE_ORDER:-}" ] && [ "$(docker node ls -q | wc -l)" -eq 1 ]; then
  export ACCOUNTSERVICE_UPDATE_ORDER=stop-first
  say "one-node swarm: accountservice updates stop-first (host port 6767 cannot be shared)"
fi

existing=$(docker stack services "$STACK" --format '{{.Name}}' 2>/dev/null || true)
compose_args=()
for file in "${stack_files[@]}"; do compose_args+=(-c "$file"); done
say "deploying stack $STACK (${stack_files[*]})"
# --resolve-image never: the images are local; asking a registry for them would only fail.
docker stack deploy --resolve-image never "${compose_args[@]}" "$STACK" >/dev/null

for svc in accountservice:"$ACCOUNTSERVICE_IMAGE" vipservice:"$VIPSERVICE_IMAGE"; do
  name="${STACK}_${svc%%:*}" image="${svc#*:}"
  if grep -qx "$name" <<<"$existing"; then
    say "updating $name in place"
    docker service update --quiet --no-resolve-image --image "$image" --force "$name" >/dev/null
  else
    say "created $name"
  fi
done

# The image a service's running task was started from, by id ("" when none runs here).
running_image() {
  local id
  id=$(docker ps -q --filter "label=com.docker.swarm.service.name=$1" | head -n 1)
  [ -z "$id" ] || docker inspect -f '{{.Image}}' "$id"
}
# Polls until a container of broker service $1 answers AMQP (bounded: 330 s, the boot window
# of the stack's health check). A node's health check passes while it boots (the stack file
# says why), so `docker service update` returns before the node is back in the cluster.
wait_broker_ready() {
  local until=$((SECONDS + 330)) id
  while :; do
    id=$(docker ps -q --filter "label=com.docker.swarm.service.name=$1" | head -n 1)
    [ -z "$id" ] || ! docker exec "$id" /usr/local/bin/amqp-ping >/dev/null 2>&1 || return 0
    [ $SECONDS -lt $until ] || die "$1 does not answer AMQP 330 s after its update"
    sleep 1 # poll interval; the deadline bounds the wait
  done
}
# One at a time, each update awaited before the next: the RabbitMQ nodes in turn.
singletons=(rabbitmq-1:"$RABBITMQ_IMAGE" rabbitmq-2:"$RABBITMQ_IMAGE" rabbitmq-3:"$RABBITMQ_IMAGE"
  postgres:"$POSTGRES_IMAGE")
[ "$monitoring" = false ] || singletons+=(prometheus:"$PROMETHEUS_IMAGE")
for svc in "${singletons[@]}"; do
  name="${STACK}_${svc%%:*}" image="${svc#*:}"
  grep -qx "$name" <<<"$existing" || continue
  running=$(running_image "$name")
  if [ -n "$running" ] && [ "$running" != "$(docker image inspect -f '{{.Id}}' "$image")" ]; then
    say "updating $name onto its rebuilt image (stop-first: it is away for a moment)"
    docker service update --quiet --no-resolve-image --image "$image" --force "$name" >/dev/null
    case "${svc%%:*}" in rabbitmq-*) wait_broker_ready "$name" ;; esac
  fi
done

# A stack deployed before the cluster ran one broker, service rabbitmq: `stack deploy` leaves
# a service the file no longer names running. Nothing connects to it any more.
if grep -qx "${STACK}_rabbitmq" <<<"$existing"; then
  say "service ${STACK}_rabbitmq (the single broker of an earlier deploy) still runs beside the cluster:" \
    "once its queues are empty (rabbitmqctl list_queues), remove it: docker service rm ${STACK}_rabbitmq"
fi

say "deployed. accountservice: http://127.0.0.1:6767/accounts/10000"
say "RabbitMQ management (any node shows the cluster): http://127.0.0.1:${RABBITMQ_MANAGEMENT_PORT:-15673}/ (rabbitmq-1)," \
  "${RABBITMQ_MANAGEMENT_PORT_2:-15674} (rabbitmq-2), ${RABBITMQ_MANAGEMENT_PORT_3:-15675} (rabbitmq-3)"
say "cluster status: docker exec \$(docker ps -q -f label=com.docker.swarm.service.name=${STACK}_rabbitmq-1) rabbitmqctl cluster_status"
say "offers database: docker exec -it \$(docker ps -q -f label=com.docker.swarm.service.name=${STACK}_postgres) psql -d offers"
say "vipservice ports: docker port CONTAINER 6868 (one ephemeral host port per replica)"
[ "$monitoring" = false ] ||
  say "Prometheus: http://127.0.0.1:${PROMETHEUS_PORT:-9090}/targets (Grafana: import docker/grafana/goblog-dashboard.json)"
