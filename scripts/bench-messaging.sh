#!/usr/bin/env bash
# Compares common::messaging with raw lapin on the same broker, in one invocation:
# runs ../shared/tools/broker-limit (raw lapin) and the messaging_bench example with the same
# count, runs, window and runtime flavour, then prints figure, raw msg/s, goblog-rs msg/s, ratio.
#
#   scripts/bench-messaging.sh [-n COUNT] [--runs R] [--window W] [--multi-thread]
#
# broker-limit is its own Cargo project beside this repository (../shared/tools/broker-limit);
# set BROKER_LIMIT_DIR to use another checkout of it.
set -euo pipefail

root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$root"

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
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "bench-messaging: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for value in "$count" "$runs" "$window"; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "bench-messaging: $value is not a positive number" >&2; exit 2; }
done

broker_limit_dir="${BROKER_LIMIT_DIR:-$root/../shared/tools/broker-limit}"
[ -f "$broker_limit_dir/Cargo.toml" ] || {
  echo "bench-messaging: broker-limit not found at $broker_limit_dir (set BROKER_LIMIT_DIR)" >&2
  exit 1
}
target_dir="${CARGO_TARGET_DIR:-$root/target}"

scripts/ensure-broker.sh

echo "== building broker-limit and messaging_bench (release)" >&2
CARGO_TARGET_DIR="$target_dir/broker-limit" \
  cargo build --release --quiet --manifest-path "$broker_limit_dir/Cargo.toml"
CARGO_TARGET_DIR="$target_dir" cargo build --release --quiet -p common --example messaging_bench
raw_bin="$target_dir/broker-limit/release/broker-limit"
ours_bin="$target_dir/release/examples/messaging_bench"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
common_args=(-n "$count" --runs "$runs" --window "$window" "${runtime_flag[@]}")
flavour="current-thread"
[ ${#runtime_flag[@]} -eq 0 ] || flavour="multi-thread"

echo "== raw lapin (broker-limit), $flavour tokio" >&2
# --only is a substring filter: these two select the four figures we compare with.
"$raw_bin" "${common_args[@]}" --only publish_confirm | tee "$out/raw"
"$raw_bin" "${common_args[@]}" --only consume_ack | tee -a "$out/raw"

echo "== goblog-rs common::messaging, $flavour tokio" >&2
"$ours_bin" "${common_args[@]}" | tee "$out/ours"

# "<figure> <params...> <median> msgs/s (runs: ...)" -> "<figure> <median>"
rates() {
  awk '{ for (i = 2; i <= NF; i++) if ($i == "msgs/s") { print $1, $(i - 1); break } }' "$1"
}
rates "$out/raw" | sort > "$out/raw.rates"
rates "$out/ours" | sort > "$out/ours.rates"
[ -s "$out/ours.rates" ] || { echo "bench-messaging: no figures from messaging_bench" >&2; exit 1; }
[ -s "$out/raw.rates" ] || { echo "bench-messaging: no figures from broker-limit" >&2; exit 1; }

echo
echo "messaging vs raw lapin: n=$count, median of $runs, window $window, $flavour tokio, $(nproc) cores"
echo
echo "| figure | raw lapin msg/s | goblog-rs msg/s | ratio |"
echo "|---|---:|---:|---:|"
join -a 2 -e - -o 0,1.2,2.2 "$out/raw.rates" "$out/ours.rates" |
  awk '{
    ratio = ($2 == "-" || $2 == 0) ? "-" : sprintf("%.0f%%", 100 * $3 / $2)
    printf "| %s | %s | %s | %s |\n", $1, $2, $3, ratio
  }'
