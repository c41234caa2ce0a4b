#!/usr/bin/env bash
# Runs every test of the workspace against a real RabbitMQ and PostgreSQL, each started (or
# installed, as root with apt) if none answers: scripts/ensure-broker.sh, then
# scripts/ensure-postgres.sh, then `cargo test --workspace --all-targets`. As root it also
# runs the tests marked ignored for needing root (they mount a small tmpfs to fill a disk, or
# run RabbitMQ clusters of their own), and then the cluster tests again on RabbitMQ 4.0 from a
# Debian trixie root file system (scripts/ensure-rabbitmq4-root.sh makes it once, ~1.5 min).
#
#   scripts/test.sh [CARGO TEST ARGUMENTS...]   # e.g. scripts/test.sh -p common -- --nocapture
#
# Environment: AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/%2f) names the broker,
# PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) the database server; see
# either script's --help for what "local" means and what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh
case "${1:-}" in
  -h | --help) usage_text; exit 0 ;;
esac
scripts/ensure-broker.sh
scripts/ensure-postgres.sh
as_root=()
if [ "$(id -u)" = 0 ]; then
  # After the caller's own `--`, if any: everything past it goes to the test binaries.
  case " $* " in
    *" -- "*) as_root=(--include-ignored) ;;
    *) as_root=(-- --include-ignored) ;;
  esac
fi
cargo test --workspace --all-targets "$@" "${as_root[@]}"
if [ "$(id -u)" = 0 ] && [ $# -eq 0 ]; then
  rabbitmq4_root=$(scripts/ensure-rabbitmq4-root.sh | tail -n 1)
  TEST_RABBITMQ_ROOT=$rabbitmq4_root \
    cargo test -p common -p test-support --test cluster -- --include-ignored
fi
