#!/usr/bin/env bash
# Builds the Go-P9 vipservice stand-in's image, $GO_P9_VIPSERVICE_IMAGE (default
# goblog-rs/go-p9-vipservice:latest), FROM scratch as the services' images are: the static
# binaries of tools/go-p9-vipservice and healthchecker (scripts/build-static.sh), nothing else
# (docker/go-p9-vipservice.Dockerfile). It stands in for the Go original's vipservice on a
# swarm, beside our accountservice in the compatibility mode (README, "The article's way";
# scripts/swarm-e2e.sh runs it). Says what it built in one line on standard error.
#
#   scripts/build-go-p9-image.sh   # needs cargo and a running Docker engine
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh
help_or_no_arguments "$@"
image="${GO_P9_VIPSERVICE_IMAGE:-goblog-rs/go-p9-vipservice:latest}"

docker info >/dev/null 2>&1 || { echo "build-go-p9-image: no Docker engine answers" >&2; exit 1; }
bin_dir=$(scripts/build-static.sh go-p9-vipservice healthchecker)
# The build context holds only what the Dockerfile adds.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$bin_dir/go-p9-vipservice" "$bin_dir/healthchecker" "$context/"
# The classic builder: Debian's docker.io engine comes without BuildKit for this client.
DOCKER_BUILDKIT=0 docker build --quiet -f docker/go-p9-vipservice.Dockerfile -t "$image" "$context" >/dev/null
echo "build-go-p9-image: built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}'))" >&2
