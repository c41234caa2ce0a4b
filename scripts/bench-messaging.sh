#!/usr/bin/env bash
# Compares common::messaging with raw lapin on the same broker, in one invocation:
# runs the workspace member raw-lapin (bench/raw-lapin: lapin alone, no goblog-rs code) and
# the messaging_bench example with the same count, window and runtime flavour, alternating
# one run of each per round (--runs rounds), then prints figure, raw msg/s, goblog-rs msg/s
# (medians over the rounds), ratio.
#
#   scripts/bench-messaging.sh [-n COUNT] [--runs R] [--window W] [--multi-thread]
#
# Both are built with `cargo build --release` and run from ${CARGO_TARGET_DIR:-target}/release;
# the broker is the default local one (scripts/ensure-broker.sh makes sure it answers).
set -euo pipefail
export LC_ALL=C # sort and join must agree on the order

root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$root"
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh

count=100000
runs=3
window=1000
runtime_flag=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--count) count="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --window) window="$2"; shift 2 ;;
    --multi-thread) runtime_flag=(--multi-thread); shift ;;
    -h|--help) usage_text; exit 0 ;;
    *) echo "bench-messaging: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for value in "$count" "$runs" "$window"; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "bench-messaging: $value is not a positive number" >&2; exit 2; }
done

target_dir="${CARGO_TARGET_DIR:-$root/target}"

scripts/ensure-broker.sh

echo "== building raw-lapin and messaging_bench (release)" >&2
CARGO_TARGET_DIR="$target_dir" cargo build --release -p raw-lapin
CARGO_TARGET_DIR="$target_dir" cargo build --release --quiet -p common --example messaging_bench
raw_bin="$target_dir/release/raw-lapin"
ours_bin="$target_dir/release/examples/messaging_bench"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
flavour="current-thread"
[ ${#runtime_flag[@]} -eq 0 ] || flavour="multi-thread"

# "<figure> <params...> <median> msgs/s (runs: ...)" -> "<figure> <median>"
rates() {
  awk '{ for (i = 2; i <= NF; i++) if ($i == "msgs/s") { print $1, $(i - 1); break } }'
}

# The broker's speed drifts over minutes (disk, GC), so raw and ours alternate, one run each
# per round, and each figure's median is taken over the rounds.
one_run=(-n "$count" --runs 1 --window "$window" "${runtime_flag[@]}")
for round in $(seq "$runs"); do
  echo "== round $round/$runs: raw lapin (raw-lapin), $flavour tokio" >&2
  # --only is a substring filter: these two select the four figures we compare with.
  "$raw_bin" "${one_run[@]}" --only publish_confirm > "$out/raw.$round"
  "$raw_bin" "${one_run[@]}" --only consume_ack >> "$out/raw.$round"
  cat "$out/raw.$round" >&2
  rates < "$out/raw.$round" >> "$out/raw.all"
  echo "== round $round/$runs: goblog-rs common::messaging, $flavour tokio" >&2
  "$ours_bin" "${one_run[@]}" > "$out/ours.$round"
  cat "$out/ours.$round" >&2
  rates < "$out/ours.$round" >> "$out/ours.all"
done

# "<figure> <rate>" lines of every round -> "<figure> <median>" (sorted by figure)
medians() {
  sort -k1,1 -k2,2n "$1" | awk '
    function flush() { if (n) print figure, v[int((n + 1) / 2)] }
    $1 != figure { flush(); figure = $1; n = 0 }
    { v[++n] = $2 }
    END { flush() }'
}
medians "$out/raw.all" > "$out/raw.rates"
medians "$out/ours.all" > "$out/ours.rates"
[ -s "$out/ours.rates" ] || { echo "bench-messaging: no figures from messaging_bench" >&2; exit 1; }
[ -s "$out/raw.rates" ] || { echo "bench-messaging: no figures from raw-lapin" >&2; exit 1; }

echo
echo "messaging vs raw lapin: n=$count, median of $runs alternating rounds, window $window, $flavour tokio, $(nproc) cores"
echo
echo "| figure | raw lapin msg/s | goblog-rs msg/s | ratio |"
echo "|---|---:|---:|---:|"
join -a 2 -e - -o 0,1.2,2.2 "$out/raw.rates" "$out/ours.rates" |
  awk '{
    ratio = ($2 == "-" || $2 == 0) ? "-" : sprintf("%.0f%%", 100 * $3 / $2)
    printf "| %s | %s | %s | %s |\n", $1, $2, $3, ratio
  }'
