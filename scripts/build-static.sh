#!/usr/bin/env bash
# Builds the binaries that the images ship: static (glibc's crt-static), release profile,
# x86_64-unknown-linux-gnu. Prints the directory that holds them. Used by copyall.sh,
# check-deploy-files.sh and bench-memory.sh, so what is measured is what is deployed, and by
# build-go-p9-image.sh for the Go-P9 stand-in (a build of its own: the services' binaries do
# not change with what it needs).
#
# Not position-independent (`-C relocation-model=static`): a static-pie binary relocates
# itself at every start, reading its ~450 kB of relocations and dirtying the pages they
# patch; without that, vipservice idles at 6.5 MB instead of 7.1 (BENCHMARKS.md). The cost is
# a binary loaded at a fixed address (no ASLR for its own code), as Go's static binaries are.
#
#   scripts/build-static.sh              # accountservice, vipservice and healthchecker
#   scripts/build-static.sh PACKAGE...   # those packages' binaries instead
# Both print e.g. target/x86_64-unknown-linux-gnu/release.
set -euo pipefail
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
# shellcheck source=lib/usage.sh
source "$root/scripts/lib/usage.sh"
case "${1:-}" in
  -h | --help) usage_text; exit 0 ;;
  -*) echo "${0##*/}: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
[ $# -gt 0 ] || set -- accountservice vipservice healthchecker
packages=()
for package in "$@"; do packages+=(-p "$package"); done
target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
  cargo build --quiet --release --manifest-path "$root/Cargo.toml" --target "$target" \
  "${packages[@]}"
echo "${CARGO_TARGET_DIR:-$root/target}/$target/release"
