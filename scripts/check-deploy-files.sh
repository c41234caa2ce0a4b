#!/usr/bin/env bash
# Checks the deployment files without deploying anything (no Docker engine needed, only the
# docker client): CI runs it on every change.
#
# 1. `docker stack config` renders the base stack file alone and with the overlays
#    (config-server, monitoring, both; syntax, schema, variable defaults), and every file they
#    and the Dockerfiles name exists (configs, secrets, COPY sources); `promtool check config`
#    on the scrape config the Prometheus image bakes in, where promtool is installed.
# 2. `bash -n` parses copyall.sh, the deployment scripts and the images' own scripts (the
#    broker's and Prometheus's health checks, PostgreSQL's entrypoint); shellcheck too where
#    installed.
# 3. The release binaries built as copyall.sh builds them are static (`ldd`), since the
#    images are FROM scratch and have no libc or loader to offer a dynamic one.
#
#   scripts/check-deploy-files.sh   # exit status 1 if a check failed
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh
help_or_no_arguments "$@"

failed=0
check() { printf 'check-deploy-files: %s ... ' "$1"; }
pass() { echo ok; }
flunk() { echo "FAILED${1:+: $1}"; failed=1; }

for files in "docker/docker-stack.yml" "docker/docker-stack.yml docker/docker-stack.config-server.yml" \
  "docker/docker-stack.yml docker/docker-stack.monitoring.yml" \
  "docker/docker-stack.yml docker/docker-stack.config-server.yml docker/docker-stack.monitoring.yml"; do
  check "docker stack config -c ${files// / -c }"
  args=()
  for f in $files; do args+=(-c "$f"); done
  if out=$(docker stack config "${args[@]}" 2>&1 >/dev/null); then pass; else flunk "$out"; fi
done

# Every file a Swarm config or secret is made from (the stack files' `file:` keys, rendered),
# and every COPY source of the Debian-based images (their contexts are docker/<name>/).
check "files the stack files and Dockerfiles name"
missing=""
rendered=$(docker stack config -c docker/docker-stack.yml -c docker/docker-stack.config-server.yml \
  -c docker/docker-stack.monitoring.yml 2>/dev/null || true)
while read -r file; do
  [ -f "$file" ] || missing+=" $file"
done < <(awk '$1 == "file:" {print $2}' <<<"$rendered")
for name in rabbitmq postgres prometheus; do
  while read -r src; do
    [ -f "docker/$name/$src" ] || missing+=" docker/$name/$src"
  done < <(awk '$1 == "COPY" {for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i}' "docker/$name.Dockerfile")
done
if [ -z "$rendered" ]; then flunk "the stack files do not render (above)"
elif [ -z "$missing" ]; then pass
else flunk "missing:$missing"; fi

# The scrape config the Prometheus image bakes in (check-metrics.sh checks it too, in CI).
if command -v promtool >/dev/null 2>&1; then
  check "promtool check config docker/prometheus/prometheus.yml"
  if out=$(promtool check config docker/prometheus/prometheus.yml 2>&1); then pass; else flunk $'\n'"$out"; fi
fi

scripts=(copyall.sh scripts/*.sh scripts/lib/*.sh docker/rabbitmq/amqp-ping docker/rabbitmq/entrypoint docker/postgres/entrypoint
  docker/prometheus/prometheus-ready)
check "bash -n ${scripts[*]}"
if out=$(for s in "${scripts[@]}"; do bash -n "$s" || exit 1; done 2>&1); then pass; else flunk "$out"; fi
if command -v shellcheck >/dev/null 2>&1; then
  check "shellcheck"
  # -x: follow the `source`d scripts/lib files.
  if out=$(shellcheck -x "${scripts[@]}" 2>&1); then pass; else flunk $'\n'"$out"; fi
fi

check "static release binaries (ldd)"
bin_dir=$(scripts/build-static.sh)
dynamic=""
for bin in accountservice vipservice healthchecker; do
  path="$bin_dir/$bin"
  # ldd prints "not a dynamic executable" (static) or "statically linked" (static-pie), and
  # exits non-zero for the former, hence the || true.
  out=$(ldd "$path" 2>&1 || true)
  grep -qE 'not a dynamic executable|statically linked' <<<"$out" || dynamic+=" $bin"
done
if [ -z "$dynamic" ]; then pass; else flunk "dynamically linked:$dynamic"; fi

exit "$failed"
