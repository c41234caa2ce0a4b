#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers at $AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/%2f).
#
#   scripts/ensure-broker.sh        # env: AMQP_URL, BROKER_WAIT_SECONDS (120)
#
# 1. If a broker already speaks AMQP there, done.
# 2. If the URL is not this machine's broker, say it does not answer and fail at once: this
#    machine's broker is 127.0.0.1, localhost or ::1 on port 5672 (RabbitMQ's default, which
#    the installed rabbitmq-server listens on). Another port or host is someone else's server
#    to start (a closed port on this host too: starting rabbitmq-server would not open it).
# 3. If port 5672 is taken: by a RabbitMQ node (starting up), wait for it; by anything else, or
#    on an address that the URL's host does not reach, name it and fail.
# 4. Else, if rabbitmq-server is installed, start it; as root with apt, install Debian's
#    rabbitmq-server first; else stop with a message that says what to install.
# It then waits until the broker answers the AMQP protocol header (polled, with a deadline).
set -euo pipefail
# shellcheck source=lib/usage.sh
source "$(dirname "$0")/lib/usage.sh"
help_or_no_arguments "$@"
# shellcheck source=lib/net.sh
source "$(dirname "$0")/lib/net.sh"

AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
WAIT_SECONDS="${BROKER_WAIT_SECONDS:-120}"
LOCAL_BROKER_PORT=5672

say() { printf 'ensure-broker: %s\n' "$*" >&2; }

case "$AMQP_URL" in amqps://*) default_port=5671 ;; *) default_port=5672 ;; esac
url_parse "$AMQP_URL" "$default_port"
host=$url_host
port=$url_port
shown_url=$(url_redact "$AMQP_URL")
[ -n "$host" ] || { say "AMQP_URL has no host: $shown_url"; exit 2; }

# True when the peer answers the AMQP 0-9-1 protocol header with a frame (connection.start).
speaks_amqp() {
  local reply
  # shellcheck disable=SC2016 # the inner script gets host and port as $0 and $1
  reply=$(timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    printf "AMQP\x00\x00\x09\x01" >&3
    head -c 1 <&3 | od -An -tx1' "$host" "$port" 2>/dev/null) || return 1
  [ "$(echo "$reply" | tr -d ' ')" = "01" ]
}

wait_until_ready() {
  local deadline=$((SECONDS + WAIT_SECONDS))
  until speaks_amqp; do
    if [ $SECONDS -ge $deadline ]; then
      say "the broker did not answer on $(host_port "$host" "$port") within ${WAIT_SECONDS}s; see /var/log/rabbitmq/"
      exit 1
    fi
    if command -v rabbitmqctl >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1 || true
    else
      sleep 0.5 # poll interval; the deadline above bounds the wait
    fi
  done
}

if speaks_amqp; then
  say "RabbitMQ answers on $(host_port "$host" "$port")"
  exit 0
fi

if ! is_loopback "$host" || [ "$port" != "$LOCAL_BROKER_PORT" ]; then
  say "$shown_url does not answer AMQP ($(host_port "$host" "$port")), and it is not this machine's broker"
  say "  (127.0.0.1, localhost or ::1 on port $LOCAL_BROKER_PORT): start the broker it names, or unset AMQP_URL"
  exit 1
fi

# Whatever holds the port already, a second rabbitmq-server could not listen there.
holders=$(port_holders "$port")
if [ -n "$holders" ]; then
  if ! listener_reaches "$host" "$port"; then
    say "port $port is taken, but not on an address that $host reaches:"
    printf 'ensure-broker:   %s\n' "$holders" >&2
    say "  set AMQP_URL to the address the broker listens on"
    exit 1
  fi
  if ! grep -q 'beam\.smp' <<<"$holders"; then
    say "port $port is taken by something that does not speak AMQP:"
    printf 'ensure-broker:   %s\n' "$holders" >&2
    exit 1
  fi
  say "a RabbitMQ node holds port $port but does not answer yet: waiting for it"
  wait_until_ready
  say "RabbitMQ answers on $(host_port "$host" "$port")"
  exit 0
fi

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's rabbitmq-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq rabbitmq-server >/dev/null
  else
    say "no broker on $(host_port "$host" "$port") and rabbitmq-server is not installed:"
    say "  install it (Debian/Ubuntu: sudo apt-get install rabbitmq-server) or set AMQP_URL"
    exit 1
  fi
fi

if [ "$(id -u)" = 0 ]; then
  say "starting rabbitmq-server"
  # A package install may have started it already through its service manager.
  speaks_amqp || rabbitmq-server -detached
else
  say "starting rabbitmq-server with sudo"
  sudo rabbitmq-server -detached
fi
wait_until_ready
say "RabbitMQ answers on $(host_port "$host" "$port")"
