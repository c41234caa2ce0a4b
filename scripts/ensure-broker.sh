#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers at $AMQP_URL (default: guest on 127.0.0.1:5672).
#
# 1. If the broker already speaks AMQP there, done.
# 2. Else, if rabbitmq-server is installed, start it.
# 3. Else, as root with apt, install Debian's rabbitmq-server and start it.
# 4. Else stop with a message that says what to install.
# It then waits until the broker answers the AMQP protocol header (no fixed sleep).
set -euo pipefail

AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
WAIT_SECONDS="${BROKER_WAIT_SECONDS:-120}"

say() { printf 'ensure-broker: %s\n' "$*" >&2; }

# host and port from amqp[s]://[user[:pass]@]host[:port][/vhost]
authority="${AMQP_URL#*://}"
authority="${authority%%/*}"
authority="${authority##*@}"
host="${authority%%:*}"
port="${authority#"$host"}"
port="${port#:}"
if [ -z "$port" ]; then
  case "$AMQP_URL" in amqps://*) port=5671 ;; *) port=5672 ;; esac
fi
[ -n "$host" ] || { say "AMQP_URL has no host: ${AMQP_URL//:*@/:***@}"; exit 2; }

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
      say "the broker did not answer on $host:$port within ${WAIT_SECONDS}s; see /var/log/rabbitmq/"
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
  say "RabbitMQ answers on $host:$port"
  exit 0
fi

case "$host" in
  127.*|localhost|::1) ;;
  *) say "nothing answers AMQP on $host:$port, and it is not this machine: start the broker there"; exit 1 ;;
esac

if ! command -v rabbitmq-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's rabbitmq-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq rabbitmq-server >/dev/null
  else
    say "no broker on $host:$port and rabbitmq-server is not installed:"
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
say "RabbitMQ answers on $host:$port"
