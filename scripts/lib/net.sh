#!/usr/bin/env bash
# Helpers for the scripts that start servers or make one answer (run-local.sh,
# ensure-broker.sh, ensure-postgres.sh): sourced, never run; nothing here starts anything.
#
#   url_parse URL DEFAULT_PORT   sets url_host (no brackets for IPv6) and url_port from
#                                scheme://[user[:password]@]host[:port][/path][?query]
#   url_redact URL               the URL with its password replaced by ***
#   is_loopback HOST             true for 127.0.0.1, localhost and ::1: this machine
#   host_port HOST PORT          host:port, or [host]:port for an IPv6 address
#   port_holders PORT            one line per TCP listener on PORT: address, process, pid
#                                (from `ss -ltnp`); nothing when the port is free
#   listener_pids PORT           the PIDs listening on TCP PORT, one a line
#   listener_reaches HOST PORT   true when a listener on PORT has an address that the
#                                loopback HOST connects to (its own, or a wildcard)
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  sed -n '2,/^[^#]/{/^# shellcheck /d;/^#/s/^# \{0,1\}//p}' "$0"
  exit 0
fi

url_parse() {
  local rest=${1#*://}
  rest=${rest%%[/?#]*}
  rest=${rest##*@}
  case "$rest" in
    \[*) # [IPv6]:port
      url_host=${rest%%]*}
      url_host=${url_host#\[}
      url_port=${rest#*]}
      ;;
    *)
      url_host=${rest%%:*}
      url_port=${rest#"$url_host"}
      ;;
  esac
  url_port=${url_port#:}
  url_port=${url_port:-$2}
}

url_redact() {
  sed -E 's|^([A-Za-z][A-Za-z0-9+.-]*://[^:/?@]*):[^@/?]*@|\1:***@|' <<<"$1"
}

is_loopback() {
  case "$1" in
    127.0.0.1 | localhost | ::1) return 0 ;;
    *) return 1 ;;
  esac
}

host_port() {
  case "$1" in
    *:*) printf '[%s]:%s\n' "$1" "$2" ;;
    *) printf '%s:%s\n' "$1" "$2" ;;
  esac
}

# ss prints `LISTEN 0 5 0.0.0.0:6767 0.0.0.0:* users:(("python3",pid=123,fd=3))`; the
# users:(...) part is missing for another user's process unless we are root.
port_holders() {
  ss -ltnpH "sport = :$1" 2>/dev/null | awk '{
    who = "a process this user cannot see (sudo ss -ltnp names it)"
    if (match($0, /users:\(.*\)/)) {
      split(substr($0, RSTART, RLENGTH), parts, "\"")
      pid = $0; sub(/.*pid=/, "", pid); sub(/[^0-9].*/, "", pid)
      who = parts[2] " (pid " pid ")"
    }
    print $4 " held by " who
  }'
}

listener_pids() {
  ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}

listener_reaches() {
  local address
  for address in $(ss -ltnH "sport = :$2" 2>/dev/null | awk '{ print $4 }'); do
    case "$1 ${address%:*}" in
      "127.0.0.1 127.0.0.1" | "127.0.0.1 0.0.0.0" | "::1 [::1]" | "localhost "*) return 0 ;;
      *" *" | *" [::]") return 0 ;;
    esac
  done
  return 1
}
