#!/usr/bin/env bash
# Makes sure a Debian trixie root file system with rabbitmq-server 4.0.x (Erlang/OTP 27) is at
# ROOT, and prints ROOT: the root that test-support's Cluster runs its nodes from when
# TEST_RABBITMQ_ROOT names it, to test against RabbitMQ 4.0 beside this machine's own broker.
#
#   scripts/ensure-rabbitmq4-root.sh [ROOT]   # default /var/cache/goblog-rs/rabbitmq-4.0-root
#   TEST_RABBITMQ_ROOT=$(scripts/ensure-rabbitmq4-root.sh) cargo test -p test-support --test cluster -- --include-ignored
#
# Needs root (chroot; debootstrap to make the root file system).
#
# 1. If ROOT holds rabbitmq-server 4.0.x and an Erlang cookie, it is reused as it is.
# 2. Else `debootstrap --variant=minbase --include=rabbitmq-server trixie` from the Debian
#    mirror this machine's apt names (80 s here, 370 MB), into ROOT.partial, which becomes
#    ROOT only once complete; debootstrap is installed with apt if missing. Whatever a package
#    started inside the new root is stopped.
# 3. The Erlang cookie that the nodes and `rabbitmqctl` in the root share is
#    ROOT/var/lib/rabbitmq/.erlang.cookie (HOME of the root's own user rabbitmq, whose uid is
#    not the host's), owned by that user, mode 0400: the package writes it, and this script
#    does if it is missing. The root's rabbitmqctl, run as root, switches to that user and
#    reads that file; the host's cookie is not involved, and the host's rabbitmqctl cannot
#    manage these nodes.
# 4. `rabbitmqctl version`, run in the root, must say 4.0.x.
#
# Nothing stays mounted: commands that need /proc in the root get it in a mount namespace of
# their own (`unshare --mount`), which ends with them.
set -euo pipefail
# shellcheck source=lib/usage.sh
source "$(dirname "$0")/lib/usage.sh"
# debian_mirror and stop_chroot_processes (the latter reads $rootfs).
# shellcheck source=lib/debian-image.sh
source "$(dirname "$0")/lib/debian-image.sh"
case "${1:-}" in
  -h | --help) usage_text; exit 0 ;;
  -*) echo "ensure-rabbitmq4-root: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "ensure-rabbitmq4-root: one ROOT at most (see --help)" >&2; exit 2; }

SUITE=trixie
WANTED=4.0.
root=${1:-/var/cache/goblog-rs/rabbitmq-4.0-root}
case "$root" in /*) ;; *) root=$PWD/$root ;; esac
root=${root%/}
cookie=$root/var/lib/rabbitmq/.erlang.cookie

# The version of package $2 installed in root $1, or nothing.
package_version() {
  # shellcheck disable=SC2016 # ${Version} is dpkg-query's field, not a shell variable
  chroot "$1" dpkg-query -W -f '${Version}' "$2" 2>/dev/null || true
}

# Runs a command in root $1 with /proc mounted, in a mount namespace that ends with it.
in_root() {
  local dir=$1
  shift
  # shellcheck disable=SC2016 # the inner script gets the root as $0 and the command as $@
  unshare --mount --propagation private sh -c \
    'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$dir" "$@"
}

ready() {
  [ -x "$root/usr/sbin/rabbitmq-server" ] && [ -s "$cookie" ] &&
    case "$(package_version "$root" rabbitmq-server)" in "$WANTED"*) true ;; *) false ;; esac
}

[ "$(id -u)" = 0 ] || die "needs root: chroot (and debootstrap, to make the root file system)"
if ! ready; then
  if [ ! -x "$root/usr/sbin/rabbitmq-server" ]; then
    if [ -e "$root" ]; then
      die "$root exists but holds no rabbitmq-server: remove it, or name another ROOT"
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
      say "installing debootstrap (apt)"
      # Another install may hold dpkg's lock for a while: wait for it rather than fail.
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 debootstrap >/dev/null
    fi
    # The archive that serves this machine's own release serves trixie too.
    mirror=$(debian_mirror "$SUITE" || debian_mirror) || die "no Debian mirror found in /etc/apt/sources.list*"
    rootfs=$root.partial
    rm -rf "$rootfs"
    mkdir -p "$(dirname "$root")"
    say "debootstrap --variant=minbase --include=rabbitmq-server $SUITE from $mirror into $rootfs"
    started=$SECONDS
    if ! debootstrap --variant=minbase --include=rabbitmq-server "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
      tail -n 20 "$rootfs.log" >&2
      stop_chroot_processes
      die "debootstrap failed (log above; $rootfs is left for a look, and made again next time)"
    fi
    say "debootstrap took $((SECONDS - started)) s"
    stop_chroot_processes
    rm -f "$rootfs.log"
    mv "$rootfs" "$root"
  fi
  version=$(package_version "$root" rabbitmq-server)
  case "$version" in
    "$WANTED"*) ;;
    *) die "$root holds rabbitmq-server ${version:-(none)}, not $WANTED*: remove it to make it again" ;;
  esac
  if [ ! -s "$cookie" ]; then
    say "writing the Erlang cookie of the nodes in $root"
    # 20 upper-case letters, the kind Erlang makes itself (read from a finite input: a tr
    # cut off by head would fail the pipeline).
    letters=$(head -c 4096 /dev/urandom | LC_ALL=C tr -dc '[:upper:]')
    (umask 077 && printf '%s' "${letters:0:20}" >"$cookie")
    chroot "$root" chown rabbitmq:rabbitmq /var/lib/rabbitmq/.erlang.cookie
    chmod 0400 "$cookie"
  fi
fi

# The CLI itself, not only the package database: it must run in the root.
cli=$(in_root "$root" rabbitmqctl version 2>&1) || die "rabbitmqctl version in $root failed: $cli"
case "$cli" in
  "$WANTED"*) ;;
  *) die "rabbitmqctl in $root says version ${cli:-(nothing)}, not $WANTED*" ;;
esac
say "rabbitmq-server $cli (Erlang package $(package_version "$root" erlang-base)) in $root"
printf '%s\n' "$root"
