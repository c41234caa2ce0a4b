#!/usr/bin/env bash
# Builds the PostgreSQL image the stack runs (the offers database vipservice's replicas
# share), without pulling anything from a registry:
#
# 1. Base image $POSTGRES_BASE_IMAGE: a Debian bookworm root file system made by
#    `debootstrap --variant=minbase --include=postgresql` and `docker import`ed, skipped when
#    the image exists. Left out of it: the cluster Debian's postinst creates (15/main; the
#    image makes its own data directory on its volume at first start), and LLVM with what
#    only it uses (~160 MB, for JIT compilation of queries, which postgresql.conf turns off:
#    vipservice's queries are key lookups and small updates), and message translations.
# 2. $POSTGRES_IMAGE from docker/postgres.Dockerfile on top of it (config, entrypoint, health
#    check): seconds, and rebuilt every time so config edits take effect.
#
# How both steps work, shared with scripts/build-rabbitmq-image.sh: scripts/lib/debian-image.sh.
#
# Usage: scripts/build-postgres-image.sh [--rebuild-base]   (--help: this text)
# Needs: root (debootstrap), a running Docker engine; installs debootstrap with apt if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh
case "${1:-}" in -h | --help) usage_text; exit 0 ;; esac
# shellcheck source=lib/debian-image.sh
. scripts/lib/debian-image.sh

build_debian_image \
  "${POSTGRES_BASE_IMAGE:-goblog-rs/debian-postgres-base:bookworm}" postgresql \
  "${POSTGRES_IMAGE:-goblog-rs/postgres:latest}" docker/postgres.Dockerfile docker/postgres \
  etc/postgresql/15/main var/lib/postgresql/15/main run/postgresql var/log/postgresql \
  usr/lib/postgresql/15/lib/llvmjit.so usr/lib/postgresql/15/lib/llvmjit_types.bc \
  usr/lib/postgresql/15/lib/bitcode usr/lib/x86_64-linux-gnu/libLLVM-14.so \
  usr/lib/x86_64-linux-gnu/libLLVM-14.so.1 usr/lib/x86_64-linux-gnu/libz3.so.4 usr/share/locale \
  -- "$@"
