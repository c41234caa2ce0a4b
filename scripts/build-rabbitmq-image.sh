#!/usr/bin/env bash
# Builds the RabbitMQ image the stack runs, without pulling anything from a registry:
#
# 1. Base image $RABBITMQ_BASE_IMAGE: a Debian bookworm root file system made by
#    `debootstrap --variant=minbase --include=rabbitmq-server` and `docker import`ed (~1 min,
#    ~100 MB of packages), skipped when the image exists.
# 2. $RABBITMQ_IMAGE from docker/rabbitmq.Dockerfile on top of it (config, management and
#    Prometheus plugins, health check): seconds, and rebuilt every time so config edits take
#    effect.
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

build_debian_image \
  "${RABBITMQ_BASE_IMAGE:-goblog-rs/debian-rabbitmq-base:bookworm}" rabbitmq-server \
  "${RABBITMQ_IMAGE:-goblog-rs/rabbitmq:latest}" docker/rabbitmq.Dockerfile docker/rabbitmq \
  -- "$@"
