#!/usr/bin/env bash
# Makes sure PostgreSQL answers at $PG_URL (default postgres://postgres@127.0.0.1:5432/postgres):
# the same idea as ensure-broker.sh, for the tests that use PostgreSQL.
#
#   scripts/ensure-postgres.sh      # env: PG_URL, PG_WAIT_SECONDS (60)
#
# 1. If `psql "$PG_URL"` runs a query, done.
# 2. If the URL is not this machine's PostgreSQL, say it does not answer and fail at once.
#    This machine's PostgreSQL is host 127.0.0.1, localhost or ::1 (or none: the local socket)
#    on port 5432, or on the port of a cluster that `pg_lsclusters` lists. Any other host or
#    port is a server somebody else starts (a closed port on this host too).
# 3. A local server that accepts connections but refuses the query (authentication): as root,
#    the test-machine setup below on its cluster, then a reload; else psql's error.
# 4. A local cluster on that port that is down: as root, the test-machine setup, then
#    `pg_ctlcluster VERSION NAME start`. No cluster: as root with apt, install Debian's
#    `postgresql` (which makes cluster `main` on 5432), or make one with pg_createcluster.
#    The port already taken: by a PostgreSQL server (starting up), wait for it; by anything
#    else, or on an address that the URL's host does not reach, name it and fail.
# It then waits until the query runs (polled, with a deadline; no fixed sleep).
#
# Test-machine setup (only on a cluster this script starts, or whose authentication fails):
# user postgres may connect over TCP from 127.0.0.1/32 and ::1/128 without a password
# (`trust` lines at the top of the cluster's pg_hba.conf, marked "goblog-rs"). Anyone who can
# open a connection on this machine is then the superuser: a setup for a test machine or a
# developer's own, never for a shared server.
set -euo pipefail
# shellcheck source=lib/usage.sh
source "$(dirname "$0")/lib/usage.sh"
help_or_no_arguments "$@"
# shellcheck source=lib/net.sh
source "$(dirname "$0")/lib/net.sh"

PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
WAIT_SECONDS="${PG_WAIT_SECONDS:-60}"
DEFAULT_PORT=5432
export PGCONNECT_TIMEOUT=3

say() { printf 'ensure-postgres: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
as_root() { [ "$(id -u)" = 0 ]; }

case "$PG_URL" in
  postgres://* | postgresql://*) ;;
  *) say "PG_URL is not a postgres:// URL: $(url_redact "$PG_URL")"; exit 2 ;;
esac
url_parse "$PG_URL" "$DEFAULT_PORT"
host=$url_host
port=$url_port
shown_url=$(url_redact "$PG_URL")
where=$(host_port "${host:-local socket}" "$port")

# True when a query runs: the server is up and lets this URL's user in.
usable() { psql -X -w -Atq -d "$PG_URL" -c 'select 1' >/dev/null 2>&1; }
# True when the server accepts connections (authentication aside).
accepting() { pg_isready -q -d "$PG_URL" -t 3 >/dev/null 2>&1; }
have_client() { command -v psql >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1; }

# "VERSION NAME STATUS" of the cluster pg_lsclusters lists on $port, if any.
cluster_on_port() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 1
  pg_lsclusters -h 2>/dev/null | awk -v p="$port" '$3 == p { print $1, $2, $4; found = 1; exit } END { exit !found }'
}

is_local() {
  [ -z "$host" ] || is_loopback "$host" || return 1
  [ "$port" = "$DEFAULT_PORT" ] || cluster_on_port >/dev/null
}

wait_until_usable() {
  local deadline=$((SECONDS + WAIT_SECONDS))
  until usable; do
    if [ $SECONDS -ge $deadline ]; then
      say "PostgreSQL did not answer at $where within ${WAIT_SECONDS}s:"
      psql -X -w -Atq -d "$PG_URL" -c 'select 1' 2>&1 | sed 's/^/ensure-postgres:   /' >&2 || true
      die "  see /var/log/postgresql/"
    fi
    sleep 0.2 # poll interval; the deadline above bounds the wait
  done
}

answers() {
  say "PostgreSQL answers at $where: $(psql -X -w -Atq -d "$PG_URL" -c 'show server_version' 2>/dev/null)"
  exit 0
}

# trust_loopback VERSION NAME: the test-machine setup (see the header) on that cluster.
# Prints "changed" when it edited pg_hba.conf.
trust_loopback() {
  local hba=/etc/postgresql/$1/$2/pg_hba.conf
  [ -f "$hba" ] || die "no $hba: cannot let user postgres in over TCP on cluster $1/$2"
  grep -q '^# goblog-rs test machine' "$hba" && return 0
  say "test-machine setup: trust for user postgres from 127.0.0.1/32 and ::1/128 in $hba"
  {
    echo "# goblog-rs test machine (scripts/ensure-postgres.sh): user postgres connects over TCP on"
    echo "# loopback without a password. Remove these four lines on a machine others use."
    echo "host all postgres 127.0.0.1/32 trust"
    echo "host all postgres ::1/128 trust"
    cat "$hba"
  } >"$hba.goblog-rs" && cat "$hba.goblog-rs" >"$hba" && rm -f "$hba.goblog-rs"
  echo changed
}

if have_client && usable; then answers; fi

if ! is_local; then
  reason=$(pg_isready -d "$PG_URL" -t 3 2>&1 || true)
  say "$shown_url does not answer${reason:+ ($reason)}, and it is not this machine's PostgreSQL"
  say "  (127.0.0.1, localhost or ::1 on port $DEFAULT_PORT or on a port pg_lsclusters lists):"
  die "  start the server it names, or unset PG_URL"
fi

if ! have_client || ! command -v pg_lsclusters >/dev/null 2>&1; then
  if ! as_root || ! command -v apt-get >/dev/null 2>&1; then
    die "no PostgreSQL at $where and no PostgreSQL installed: install it (Debian/Ubuntu: sudo apt-get install postgresql) or set PG_URL"
  fi
  say "installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  # The package's own start may have brought its cluster up already.
  if usable; then answers; fi
fi

if accepting; then
  # Up, but the query was refused: authentication or a missing database.
  if as_root && read -r version name _ < <(cluster_on_port) &&
    [ "$(trust_loopback "$version" "$name")" = changed ]; then
    pg_ctlcluster "$version" "$name" reload
    wait_until_usable
    answers
  fi
  psql -X -w -Atq -d "$PG_URL" -c 'select 1' 2>&1 | sed 's/^/ensure-postgres:   /' >&2 || true
  die "PostgreSQL at $where accepts connections but refuses $shown_url (above)"
fi

# Whatever holds the port already, a cluster started now could not listen there.
holders=$(port_holders "$port")
if [ -n "$holders" ]; then
  if [ -n "$host" ] && ! listener_reaches "$host" "$port"; then
    say "port $port is taken, but not on an address that $host reaches:"
    printf 'ensure-postgres:   %s\n' "$holders" >&2
    die "  set PG_URL to the address the server listens on"
  fi
  if ! grep -q 'held by postgres ' <<<"$holders"; then
    say "port $port is taken by something that is not PostgreSQL:"
    printf 'ensure-postgres:   %s\n' "$holders" >&2
    exit 1
  fi
  say "a PostgreSQL server holds port $port but does not accept connections yet: waiting for it"
  wait_until_usable
  answers
fi

if ! cluster_on_port >/dev/null; then
  as_root || die "no PostgreSQL cluster on port $port: as root, pg_createcluster --port $port VERSION NAME"
  version=$(pg_lsclusters -h 2>/dev/null | awk '{ print $1 }' | sort -V | tail -n 1)
  [ -n "$version" ] || version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || die "PostgreSQL is installed but no server version is (apt-get install postgresql)"
  name=main
  [ ! -d "/etc/postgresql/$version/main" ] || name=goblog-$port
  say "creating cluster $version/$name on port $port"
  pg_createcluster --port "$port" "$version" "$name" >/dev/null
fi
read -r version name status < <(cluster_on_port)

as_root || die "PostgreSQL cluster $version/$name on port $port is $status: start it (sudo pg_ctlcluster $version $name start)"
trust_loopback "$version" "$name" >/dev/null
say "starting cluster $version/$name (pg_ctlcluster $version $name start)"
pg_ctlcluster "$version" "$name" start
wait_until_usable
answers
