#!/usr/bin/env bash
# Builds the Prometheus image the monitoring overlay runs (docker/docker-stack.monitoring.yml),
# without pulling anything from a registry:
#
# 1. Base image $PROMETHEUS_BASE_IMAGE: a Debian bookworm root file system made by
#    `debootstrap --variant=minbase --include=prometheus` (Debian's Prometheus 2.42; no
#    Recommends, so no node exporter) and `docker import`ed, skipped when the image exists.
#    Left out of it: promtool (48 MB, a tool for people, not for the server), moment-timezone's
#    data files (212 MB of the 356 MB: the web UI loads only moment-timezone-with-data.min.js,
#    which holds its own), what the package's postinst wrote if it started the daemon in the
#    chroot (TSDB, log and pid directories; the build stops such a process), and message
#    translations.
# 2. $PROMETHEUS_IMAGE from docker/prometheus.Dockerfile on top of it (the stack's scrape
#    config, storage directory, health check): seconds, and rebuilt every time so that edits
#    of docker/prometheus/prometheus.yml take effect.
#
# How both steps work, shared with scripts/build-rabbitmq-image.sh: scripts/lib/debian-image.sh.
#
# Usage: scripts/build-prometheus-image.sh [--rebuild-base]   (--help: this text)
# Needs: root (debootstrap), a running Docker engine; installs debootstrap with apt if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh
case "${1:-}" in -h | --help) usage_text; exit 0 ;; esac
# shellcheck source=lib/debian-image.sh
. scripts/lib/debian-image.sh

build_debian_image \
  "${PROMETHEUS_BASE_IMAGE:-goblog-rs/debian-prometheus-base:bookworm}" prometheus \
  "${PROMETHEUS_IMAGE:-goblog-rs/prometheus:latest}" docker/prometheus.Dockerfile docker/prometheus \
  usr/bin/promtool usr/share/javascript/moment-timezone/data \
  var/lib/prometheus/metrics2 var/log/prometheus run/prometheus usr/share/locale \
  -- "$@"
