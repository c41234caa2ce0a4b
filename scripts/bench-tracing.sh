#!/usr/bin/env bash
# What tracing costs (issue 18), in one invocation: not-VIP and VIP requests per second of
# accountservice (vipservice draining the notifications) with OTLP export off and on (100%
# sampling, the SDK's default, to bench/otlp-sink on a port of its own standing in for the
# collector), and, with BASE_BIN_DIR, of another build (the one before the spans) for the
# cost of export off against it.
#
# Each run is one scripts/bench-memory.sh (its `wrk -t2 -c50 -d15s` phases); the variants take
# turns, ROUNDS times, so that a slow spell of the machine hits each of them alike. Prints each
# run's figures and, per variant, the median req/s and its difference from the reference (the
# base build if given, else export off). Fails when a run does not drain (a VIP read not
# offered) or answers anything but 200.
#
#   scripts/bench-tracing.sh [BIN_DIR]   # env: ROUNDS (2), BASE_BIN_DIR, DURATION (15s)
#   scripts/bench-tracing.sh --help      # this text
#
# BIN_DIR (default: target/release, built first) holds accountservice, vipservice and
# otlp-sink. CPU instructions per request (steadier than req/s on a shared machine) are
# counted by scripts/bench-instructions.sh, with the same EXTRA_ENV for export on.
set -euo pipefail
# shellcheck source=lib/usage.sh
source "$(dirname "$0")/lib/usage.sh"
case "${1:-}" in
  -h | --help) usage_text; exit 0 ;;
  -*) echo "bench-tracing: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "bench-tracing: one BIN_DIR at most (see --help)" >&2; exit 2; }

root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
if [ -n "${1:-}" ]; then
  bin="$(cd "$1" && pwd)"
else
  cargo build --quiet --release -p accountservice -p vipservice -p otlp-sink --manifest-path "$root/Cargo.toml"
  bin="${CARGO_TARGET_DIR:-$root/target}/release"
fi
for binary in accountservice vipservice otlp-sink; do
  [ -x "$bin/$binary" ] || { echo "bench-tracing: no $binary in $bin" >&2; exit 2; }
done
base="${BASE_BIN_DIR:-}"
if [ -n "$base" ]; then base="$(cd "$base" && pwd)"; fi
rounds="${ROUNDS:-2}"
port=$((14000 + $$ % 1000))
work="$(mktemp -d)"
sink=
cleanup() {
  if [ -n "$sink" ]; then kill -TERM "$sink" 2>/dev/null || true; wait "$sink" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/otlp-sink" --port "$port" >"$work/sink.log" 2>&1 &
sink=$!
deadline=$((SECONDS + 10))
until curl -fs -o /dev/null -X POST "http://127.0.0.1:$port/v1/traces"; do
  kill -0 "$sink" 2>/dev/null || { echo "bench-tracing: otlp-sink exited:" >&2; cat "$work/sink.log" >&2; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { echo "bench-tracing: otlp-sink not answering on port $port" >&2; exit 1; }
  sleep 0.05 # poll interval; the deadline bounds the wait
done

variants=()
[ -z "$base" ] || variants+=(base)
variants+=(off on)
# run VARIANT ROUND: one bench-memory.sh of VARIANT; appends "variant nonvip_rps nonvip_p99
# vip_rps vip_p99" to $work/figures.
run() {
  local dir=$bin extra="" out="$work/$1-$2.txt"
  case "$1" in
    base) dir=$base ;;
    on) extra="OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$port" ;;
  esac
  EXTRA_ENV="$extra" "$root/scripts/bench-memory.sh" "$dir" >"$out" 2>&1 ||
    { echo "bench-tracing: bench-memory.sh failed for $1:" >&2; cat "$out" >&2; exit 1; }
  if grep -q "NOT drained\|Non-2xx\|Socket errors" "$out"; then
    echo "bench-tracing: $1 answered other than 200 or did not drain:" >&2
    cat "$out" >&2
    exit 1
  fi
  local rps p99
  mapfile -t rps < <(awk '/Requests\/sec/ { print $2 }' "$out")
  mapfile -t p99 < <(awk '$1 == "99%" { print $2 }' "$out")
  if [ "${#rps[@]}" -ne 2 ] || [ "${#p99[@]}" -ne 2 ]; then
    echo "bench-tracing: no wrk figures for $1:" >&2
    cat "$out" >&2
    exit 1
  fi
  echo "$1 ${rps[0]} ${p99[0]} ${rps[1]} ${p99[1]}" >>"$work/figures"
  printf 'round %s %-4s not VIP %9.0f req/s (p99 %s)   VIP %7.0f req/s (p99 %s)\n' \
    "$2" "$1" "${rps[0]}" "${p99[0]}" "${rps[1]}" "${p99[1]}"
}
for round in $(seq "$rounds"); do
  for variant in "${variants[@]}"; do run "$variant" "$round"; done
done

# median VARIANT COLUMN: the median of that variant's runs in column COLUMN of figures.
median() {
  awk -v v="$1" -v c="$2" '$1 == v { print $c }' "$work/figures" | sort -n |
    awk '{ x[NR] = $1 } END { print (NR % 2) ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2 }'
}
reference="${variants[0]}"
echo
echo "median of $rounds runs; difference against $reference"
for variant in "${variants[@]}"; do
  awk -v v="$variant" -v n="$(median "$variant" 2)" -v nr="$(median "$reference" 2)" \
    -v p="$(median "$variant" 4)" -v pr="$(median "$reference" 4)" 'BEGIN {
      printf "%-4s not VIP %9.0f req/s (%+.1f%%)   VIP %7.0f req/s (%+.1f%%)\n", v, n, (n / nr - 1) * 100, p, (p / pr - 1) * 100
    }'
done
kill -TERM "$sink"
wait "$sink" || true
sink=
echo "collector stand-in: $(tail -n 1 "$work/sink.log")"
