#!/usr/bin/env bash
# Runs every test of the workspace against a real RabbitMQ (started or installed if none answers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-broker.sh
cargo test --workspace --all-targets "$@"
