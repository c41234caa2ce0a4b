# shellcheck shell=bash
# Sourced by the scripts that build the stack's Debian-based images without pulling anything
# from a registry (scripts/build-rabbitmq-image.sh, scripts/build-postgres-image.sh,
# scripts/build-prometheus-image.sh):
#
# 1. A base image: a Debian root file system of release $DEBIAN_SUITE (bookworm unless the
#    image's script sets another after sourcing this file: the broker's is trixie) made by
#    `debootstrap --variant=minbase --include=PACKAGES` from the mirror this machine's apt
#    already uses, brought up to date from $DEBIAN_SUITE-updates and $DEBIAN_SUITE-security
#    (where this machine's apt names a mirror for them), then `docker import`ed. This is the
#    slow part (a minute or two), so it is skipped when the image exists: Docker's image store
#    is the cache, and --rebuild-base takes newer security updates.
# 2. The image itself, from its Dockerfile on top of that base (config, entrypoint, health
#    check): seconds, and rebuilt every time so that config edits take effect (unchanged
#    inputs hit the build cache, so the image id stays the same).
#
# Entry point: build_debian_image (see below). Needs root (debootstrap) and a running Docker
# engine; installs debootstrap with apt if missing.

# The Debian release of the base image; an image script may set another after sourcing.
DEBIAN_SUITE=bookworm
debian_image_tool=$(basename "$0" .sh)

say() { printf '%s: %s\n' "$debian_image_tool" "$*" >&2; }
die() { say "$*"; exit 1; }

# debian_mirror [SUITE]: the Debian mirror apt is configured with here for SUITE (default
# $DEBIAN_SUITE; e.g. $DEBIAN_SUITE-security has a mirror of its own). Never a hard-coded host:
# machines of this project reach only the mirror their apt sources name. A release this
# machine's apt does not follow (trixie on a bookworm machine) is served by the same archive
# as its own release: then the mirror named for this machine's release with the same suffix
# (bookworm-security's for trixie-security).
debian_mirror() {
  local suite=${1:-$DEBIAN_SUITE} own suffix
  apt_source_uri "$suite" && return 0
  own=$(. /etc/os-release 2>/dev/null && [ "${ID:-}" = debian ] && echo "${VERSION_CODENAME:-}") || return 1
  [ -n "$own" ] || return 1
  case "$suite" in *-*) suffix=-${suite#*-} ;; *) suffix="" ;; esac
  [ "$own$suffix" != "$suite" ] || return 1
  apt_source_uri "$own$suffix"
}

# apt_source_uri SUITE: the URI of the first apt source here that names SUITE. Reads deb822
# *.sources stanzas (URIs:/Suites:) and one-line *.list entries, as apt does.
apt_source_uri() {
  local suite=$1 files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 1
  awk -v suite="$suite" '
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

# Processes whose root directory is inside the chroot were started by debootstrap for us (a
# package's postinst may start its daemon: epmd for rabbitmq-server, a cluster for postgresql).
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
  rm -rf "$rootfs" "$rootfs.log" "$rootfs.upgrade.log"
}

# Brings the root file system's packages up to date from $DEBIAN_SUITE-updates and
# $DEBIAN_SUITE-security, from the mirrors this machine's apt names for them (debootstrap
# installs from one suite only). Daemons are kept from starting meanwhile (policy-rc.d).
upgrade_rootfs() {
  local mirror=$1 security log="$rootfs.upgrade.log"
  {
    echo "deb $mirror $DEBIAN_SUITE main"
    if debian_mirror "$DEBIAN_SUITE-updates" >/dev/null; then
      echo "deb $(debian_mirror "$DEBIAN_SUITE-updates") $DEBIAN_SUITE-updates main"
    fi
    if security=$(debian_mirror "$DEBIAN_SUITE-security"); then
      echo "deb $security $DEBIAN_SUITE-security main"
    fi
  } >"$rootfs/etc/apt/sources.list"
  if [ "$(wc -l <"$rootfs/etc/apt/sources.list")" -eq 1 ]; then
    say "no $DEBIAN_SUITE-updates or -security mirror in this machine's apt sources: no upgrade"
    return 0
  fi
  printf '#!/bin/sh
exit 101
' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  say "apt-get upgrade from $(grep -c . "$rootfs/etc/apt/sources.list") suites"
  if ! DEBIAN_FRONTEND=noninteractive chroot "$rootfs" sh -c \
    'apt-get update -qq && apt-get -y -q -o Dpkg::Options::=--force-confold upgrade' >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "apt-get upgrade in the root file system failed (log above)"
  fi
  say "apt-get upgrade: $(grep -E '^[0-9]+ upgraded' "$log" || echo 'done')"
  rm -f "$rootfs/usr/sbin/policy-rc.d" "$log"
  stop_chroot_processes
}

# build_debian_base BASE_IMAGE PACKAGES [TRIM_PATH...]
# PACKAGES: comma-separated, for --include. TRIM_PATHs (relative to the root file system, no
# globs) are removed before the import, beside what no container needs (downloaded .debs, apt
# lists, docs, man pages). Each must resolve inside the root file system: its var/run, for
# one, is an absolute link to /run, which outside the chroot is the host's.
build_debian_base() {
  local base_image=$1 packages=$2
  shift 2
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  fi
  local mirror
  mirror=$(debian_mirror) || die "no Debian $DEBIAN_SUITE mirror found in /etc/apt/sources.list*"

  rootfs=$(mktemp -d "/var/tmp/goblog-$debian_image_tool-rootfs.XXXXXX")
  # Always remove the root file system, even on failure: it is a few hundred MB.
  trap 'cleanup_rootfs' EXIT

  say "debootstrap --variant=minbase --include=$packages $DEBIAN_SUITE from $mirror"
  local started=$SECONDS log="$rootfs.log" path
  if ! debootstrap --variant=minbase --include="$packages" "$DEBIAN_SUITE" "$rootfs" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "debootstrap failed (log above)"
  fi
  say "debootstrap took $((SECONDS - started)) s"
  stop_chroot_processes
  upgrade_rootfs "$mirror"

  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/log/*.log
  for path in "$@"; do
    case "$(realpath -m "$rootfs/$path")" in
      "$rootfs"/?*) rm -rf "${rootfs:?}/$path" ;;
      *) die "trim path $path leads out of the root file system" ;;
    esac
  done
  say "importing the root file system as $base_image"
  tar --numeric-owner -C "$rootfs" -c . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/bash"]' \
      --message "debootstrap --variant=minbase --include=$packages $DEBIAN_SUITE" \
      - "$base_image" >/dev/null
  cleanup_rootfs
  rootfs=""
  trap - EXIT
}

# build_debian_image BASE_IMAGE PACKAGES IMAGE DOCKERFILE CONTEXT [TRIM_PATH...] -- "$@"
# The whole of an image script: parses its arguments ([--rebuild-base]), makes the base image
# unless it exists, then builds IMAGE from DOCKERFILE (build arg BASE_IMAGE) in CONTEXT.
build_debian_image() {
  local base_image=$1 packages=$2 image=$3 dockerfile=$4 context=$5
  shift 5
  local trim=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do trim+=("$1"); shift; done
  [ $# -gt 0 ] && shift

  local rebuild_base=false
  case "${1:-}" in
    --rebuild-base) rebuild_base=true ;;
    "") ;;
    *) die "unknown argument: $1 (usage: $0 [--rebuild-base])" ;;
  esac

  docker info >/dev/null 2>&1 || die "no Docker engine answers (start dockerd first)"
  if [ "$rebuild_base" = false ] && docker image inspect "$base_image" >/dev/null 2>&1; then
    say "base image $base_image exists: reusing it (--rebuild-base to make it again)"
  else
    build_debian_base "$base_image" "$packages" "${trim[@]}"
  fi

  say "building $image"
  # The classic builder: the engine from Debian's docker.io has no BuildKit plugin for this client.
  DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE_IMAGE=$base_image" \
    -f "$dockerfile" -t "$image" "$context" >/dev/null
  say "$image: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
}
