#!/usr/bin/env bash
# Builds the RabbitMQ image the stack runs, without pulling anything from a registry:
#
# 1. Base image $RABBITMQ_BASE_IMAGE: a Debian trixie root file system made by
#    `debootstrap --variant=minbase --include=rabbitmq-server` (RabbitMQ 4.0, Erlang 27) and
#    `docker import`ed (a minute or two, ~100 MB of packages), skipped when the image exists.
#    Trixie, not bookworm (3.10, whose quorum queues cannot grow back by themselves): the
#    stack runs a three-node cluster (docker/docker-stack.yml). Left out of it: the Erlang
#    cookie the package's postinst made, which every container of the image would share (a
#    standalone broker makes its own at first start; the stack's nodes get theirs from a
#    Swarm secret), and message translations.
# 2. $RABBITMQ_IMAGE from docker/rabbitmq.Dockerfile on top of it (config, management and
#    Prometheus plugins, entrypoint, health check): seconds, and rebuilt every time so config
#    edits take effect.
#
# How both steps work, shared with scripts/build-postgres-image.sh: scripts/lib/debian-image.sh.
#
# Usage: scripts/build-rabbitmq-image.sh [--rebuild-base]   (--help: this text)
# Needs: root (debootstrap), a running Docker engine; installs debootstrap with apt if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh
case "${1:-}" in -h | --help) usage_text; exit 0 ;; esac
# shellcheck source=lib/debian-image.sh
. scripts/lib/debian-image.sh
# shellcheck disable=SC2034 # read by scripts/lib/debian-image.sh
DEBIAN_SUITE=trixie

build_debian_image \
  "${RABBITMQ_BASE_IMAGE:-goblog-rs/debian-rabbitmq-base:trixie}" rabbitmq-server \
  "${RABBITMQ_IMAGE:-goblog-rs/rabbitmq:latest}" docker/rabbitmq.Dockerfile docker/rabbitmq \
  var/lib/rabbitmq/.erlang.cookie usr/share/locale \
  -- "$@"
