#!/usr/bin/env bash
# Builds the binaries that the images ship: static (glibc's crt-static), release profile,
# x86_64-unknown-linux-gnu. Prints the directory that holds them. Used by copyall.sh,
# check-deploy-files.sh and bench-memory.sh, so what is measured is what is deployed.
#
#   scripts/build-static.sh     # prints e.g. target/x86_64-unknown-linux-gnu/release
set -euo pipefail
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
# shellcheck source=lib/usage.sh
source "$root/scripts/lib/usage.sh"
help_or_no_arguments "$@"
target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --quiet --release --manifest-path "$root/Cargo.toml" --target "$target" \
  -p accountservice -p vipservice -p healthchecker
echo "${CARGO_TARGET_DIR:-$root/target}/$target/release"
