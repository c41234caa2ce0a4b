#!/usr/bin/env bash
# Builds the RabbitMQ image the stack runs, without pulling anything from a registry:
#
# 1. Base image $RABBITMQ_BASE_IMAGE: a Debian bookworm root file system made by
#    `debootstrap --variant=minbase --include=rabbitmq-server` from the mirror this machine's
#    apt already uses, then `docker import`ed. This is the slow part (~1 min, ~100 MB of
#    packages), so it is skipped when the image exists: Docker's image store is the cache.
# 2. $RABBITMQ_IMAGE from docker/rabbitmq.Dockerfile on top of it (config, management plugin,
#    health check): seconds, and rebuilt every time so config edits take effect.
#
# Usage: scripts/build-rabbitmq-image.sh [--rebuild-base]   (--help: this text)
# Needs: root (debootstrap), a running Docker engine; installs debootstrap with apt if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh

BASE_IMAGE="${RABBITMQ_BASE_IMAGE:-goblog-rs/debian-rabbitmq-base:bookworm}"
IMAGE="${RABBITMQ_IMAGE:-goblog-rs/rabbitmq:latest}"
SUITE=bookworm

say() { printf 'build-rabbitmq-image: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

rebuild_base=false
case "${1:-}" in
  --rebuild-base) rebuild_base=true ;;
  -h | --help) usage_text; exit 0 ;;
  "") ;;
  *) die "unknown argument: $1 (usage: $0 [--rebuild-base])" ;;
esac

# The Debian mirror apt is configured with here, for $SUITE (not -security/-updates). Never a
# hard-coded host: machines of this project reach only the mirror their apt sources name.
# Reads deb822 *.sources stanzas (URIs:/Suites:) and one-line *.list entries, as apt does.
debian_mirror() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 1
  awk -v suite="$SUITE" '
    # one-line format: deb [opts] URI SUITE COMPONENTS...
    /^[[:space:]]*deb[[:space:]]/ {
      n = split($0, f, /[[:space:]]+/); i = 2
      if (f[i] ~ /^\[/) { while (i <= n && f[i] !~ /\]$/) i++; i++ }
      if (f[i + 1] == suite) { print f[i]; exit }
      next
    }
    # deb822 format: stanzas separated by blank lines
    /^[[:space:]]*$/ { if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && suites ~ ("(^|[[:space:]])" suite "([[:space:]]|$)")) { split(uris, u, /[[:space:]]+/); print u[1]; exit } types = suites = uris = ""; next }
    /^Types:/  { sub(/^Types:[[:space:]]*/, "");  types = $0 }
    /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
    /^URIs:/   { sub(/^URIs:[[:space:]]*/, "");   uris = $0 }
    END { if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && suites ~ ("(^|[[:space:]])" suite "([[:space:]]|$)")) { split(uris, u, /[[:space:]]+/); print u[1] } }
  ' "${files[@]}" | head -n 1 | grep .
}

build_base() {
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  local mirror
  mirror=$(debian_mirror) || die "no Debian $SUITE mirror found in /etc/apt/sources.list*"

  rootfs=$(mktemp -d /var/tmp/goblog-rabbitmq-rootfs.XXXXXX)
  # Always remove the root file system, even on failure: it is ~300 MB.
  trap 'cleanup_rootfs' EXIT

  say "debootstrap --variant=minbase --include=rabbitmq-server $SUITE from $mirror"
  local started=$SECONDS log="$rootfs.log"
  if ! debootstrap --variant=minbase --include=rabbitmq-server "$SUITE" "$rootfs" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "debootstrap failed (log above)"
  fi
  say "debootstrap took $((SECONDS - started)) s"
  # rabbitmq-server's postinst may start epmd inside the chroot; stop whatever runs there.
  stop_chroot_processes

  # Trim what a container never needs: downloaded .debs, apt lists, docs, man pages.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/log/*.log
  say "importing the root file system as $BASE_IMAGE"
  tar --numeric-owner -C "$rootfs" -c . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/bash"]' \
      --message "debootstrap --variant=minbase --include=rabbitmq-server $SUITE" \
      - "$BASE_IMAGE" >/dev/null
}

# Processes whose root directory is inside the chroot were started by debootstrap for us.
stop_chroot_processes() {
  local proc pid root
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    root=$(readlink "$proc/root" 2>/dev/null) || continue
    case "$root" in
      "$rootfs"|"$rootfs"/*) say "stopping $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid) left running in the chroot"; kill "$pid" 2>/dev/null || true ;;
    esac
  done
}

cleanup_rootfs() {
  [ -n "${rootfs:-}" ] || return 0
  stop_chroot_processes
  # debootstrap unmounts proc/sys itself; only if it died half-way is something still there.
  local mnt
  awk -v r="$rootfs" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r |
    while read -r mnt; do umount -l "$mnt" || true; done
  rm -rf "$rootfs" "$rootfs.log"
}

docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd first)"

if [ "$rebuild_base" = false ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  say "base image $BASE_IMAGE exists: reusing it (--rebuild-base to make it again)"
else
  build_base
fi

say "building $IMAGE"
# The classic builder: the engine from Debian's docker.io has no BuildKit plugin for this client.
DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" \
  -f docker/rabbitmq.Dockerfile -t "$IMAGE" docker/rabbitmq >/dev/null
say "$IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
