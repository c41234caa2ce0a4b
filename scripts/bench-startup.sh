#!/usr/bin/env bash
# Start to first /health 200 of both services, the shipped static build by default: the
# workspace member bench/startup starts each binary RUNS + 1 times (the first on fresh stores
# and a new vip_queue, the rest on what the first left; SQLite for vipservice), times the
# spawn to the first 200 (a request waits on the bound port, so no poll interval is added),
# stops it with SIGTERM, and prints the fresh figure and the median / min / max of the rest.
# The Go original: vipservice 18 ms, accountservice 268 ms (median of 11).
#
#   scripts/bench-startup.sh [BIN_DIR]   # env: RUNS (11), PORT (17868; accountservice PORT+1),
#                                        #      AMQP_URL
#   scripts/bench-startup.sh --help      # this text
#
# BIN_DIR holds vipservice and accountservice (default: scripts/build-static.sh's output).
# The broker is the default local one (scripts/ensure-broker.sh makes sure it answers).
set -euo pipefail
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
# shellcheck source=lib/usage.sh
source "$root/scripts/lib/usage.sh"
case "${1:-}" in
  -h | --help) usage_text; exit 0 ;;
  -*) echo "bench-startup: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "bench-startup: one BIN_DIR at most (see --help)" >&2; exit 2; }
cd "$root"
scripts/ensure-broker.sh
bin="${1:-$(scripts/build-static.sh)}"
cargo build --release -q -p startup-bench
"${CARGO_TARGET_DIR:-target}/release/startup-bench" --bin-dir "$bin" --config-repo config-repo \
  --runs "${RUNS:-11}" --port "${PORT:-17868}"
