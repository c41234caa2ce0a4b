#!/usr/bin/env bash
# vipservice draining VIP notifications into durable offers, against raw lapin consume-with-ack
# on the same broker, in one invocation. Per round (--runs rounds, alternating):
#   1. raw-lapin --only consume_ack (the workspace member bench/raw-lapin: lapin alone,
#      classic queue, prefetch 100 and 1000, ack per message);
#   2. the drain_bench example driving one release-built vipservice process: idle RSS, a paced
#      run on the service at rest (RATE msg/s for SECONDS s) for a latency that is not
#      queueing, then a drain of COUNT pre-published notifications on a fresh start (offers/s,
#      publish->offer latency, peak RSS).
# Prints the medians over the rounds next to the Go original's figures.
#
#   scripts/bench-vipservice.sh [-n COUNT] [--runs R] [--rate RATE] [--seconds S]
#                               [--queue-type quorum|classic] [--prefetch P]
#                               [--database sqlite|postgres]
#
# --database postgres: each round's vipservice writes to a fresh database of its own on PG_URL's
# server (default postgres://postgres@127.0.0.1:5432/postgres), dropped after the round;
# sqlite (the default): a fresh file per phase in drain_bench's temp dir.
#
# Everything is built with `cargo build --release` and runs from ${CARGO_TARGET_DIR:-target}/release;
# the broker is the default local one (scripts/ensure-broker.sh makes sure it answers).
set -euo pipefail
export LC_ALL=C # sort and join must agree on the order

root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$root"
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh

count=100000
runs=1
rate=2000
seconds=10
queue_type=quorum
database=sqlite
bench_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--count) count="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --queue-type) queue_type="$2"; shift 2 ;;
    --prefetch) bench_flags+=(--prefetch "$2"); shift 2 ;;
    --database) database="$2"; shift 2 ;;
    -h|--help) usage_text; exit 0 ;;
    *) echo "bench-vipservice: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for value in "$count" "$runs" "$rate" "$seconds"; do
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "bench-vipservice: $value is not a positive number" >&2; exit 2; }
done
case "$queue_type" in
  quorum|classic) ;;
  *) echo "bench-vipservice: --queue-type is quorum or classic" >&2; exit 2 ;;
esac
case "$database" in
  sqlite|postgres) ;;
  *) echo "bench-vipservice: --database is sqlite or postgres" >&2; exit 2 ;;
esac
pg_url=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}

target_dir="${CARGO_TARGET_DIR:-$root/target}"

scripts/ensure-broker.sh

echo "== building raw-lapin, vipservice and drain_bench (release)" >&2
CARGO_TARGET_DIR="$target_dir" cargo build --release -p raw-lapin
CARGO_TARGET_DIR="$target_dir" \
  cargo build --release --quiet -p vipservice --bin vipservice --example drain_bench
raw_bin="$target_dir/release/raw-lapin"
bench_bin="$target_dir/release/examples/drain_bench"
vip_bin="$target_dir/release/vipservice"

out="$(mktemp -d)"
pg_database=
drop_database() {
  [ -z "$pg_database" ] || psql -q "$pg_url" -c "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)"
  pg_database=
}
trap 'drop_database; rm -rf "$out"' EXIT

# raw-lapin's "<figure> <params...> <median> msgs/s (runs: ...)" -> "<figure> <median>"
rates() {
  awk '{ for (i = 2; i <= NF; i++) if ($i == "msgs/s") { print $1, $(i - 1); break } }'
}

for round in $(seq "$runs"); do
  echo "== round $round/$runs: raw lapin consume with ack (raw-lapin)" >&2
  "$raw_bin" -n "$count" --runs 1 --only consume_ack > "$out/raw.$round"
  cat "$out/raw.$round" >&2
  rates < "$out/raw.$round" >> "$out/all"
  echo "== round $round/$runs: vipservice ($queue_type queue, $database)" >&2
  database_flags=()
  if [ "$database" = postgres ]; then
    pg_database=bench_vip_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
    psql -q "$pg_url" -c "CREATE DATABASE $pg_database"
    database_flags=(--database-url "${pg_url%/*}/$pg_database")
  fi
  # drain_bench stops its vipservice and deletes its queues itself, also when it fails.
  "$bench_bin" --vipservice "$vip_bin" -n "$count" --rate "$rate" --seconds "$seconds" \
    --queue-type "$queue_type" "${bench_flags[@]}" "${database_flags[@]}" > "$out/vip.$round"
  drop_database
  cat "$out/vip.$round" >&2
  grep -E '^[a-z0-9_]+ [0-9.]+$' "$out/vip.$round" >> "$out/all"
done

# "<name> <value>" lines of every round -> "<name> <median>"
sort -k1,1 -k2,2n "$out/all" | awk '
  function flush() { if (n) print name, v[int((n + 1) / 2)] }
  $1 != name { flush(); name = $1; n = 0 }
  { v[++n] = $2 }
  END { flush() }' > "$out/medians"
value() {
  awk -v name="$1" '$1 == name { print $2; found = 1 } END { if (!found) print "-" }' "$out/medians"
}
for name in consume_ack_prefetch100 consume_ack_prefetch1000 drain_offers_per_s idle_rss_kb; do
  [ "$(value "$name")" != "-" ] || { echo "bench-vipservice: no $name figure" >&2; exit 1; }
done
mb() { awk -v kb="$(value "$1")" 'BEGIN { printf "%.1f MB", kb / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
offers="$(value drain_offers_per_s)"
raw100="$(value consume_ack_prefetch100)"
raw1000="$(value consume_ack_prefetch1000)"
peak="$(value paced_peak_rss_kb)"
[ "$peak" != "-" ] || peak="$(value drain_peak_rss_kb)"

echo
echo "vipservice drain: n=$count, $queue_type queue, $database, paced $rate msg/s x ${seconds}s, median of $runs round(s), $(nproc) cores"
echo
echo "| metric | Go original | goblog-rs vipservice | raw lapin | ratio |"
echo "|---|---:|---:|---:|---:|"
echo "| drain $count: offers/s, durable (vs raw consume_ack prefetch 1000) | – | $offers | $raw1000 | $(ratio "$offers" "$raw1000") |"
echo "| drain $count: offers/s, durable (vs raw consume_ack prefetch 100) | – | $offers | $raw100 | $(ratio "$offers" "$raw100") |"
echo "| drain: publish → offer p50 / p99 (queueing) | – | $(value drain_latency_p50_ms) / $(value drain_latency_p99_ms) ms | – | – |"
echo "| paced $rate msg/s: publish → offer p50 / p99 | – | $(value paced_latency_p50_ms) / $(value paced_latency_p99_ms) ms | – | – |"
echo "| idle RSS (VmRSS 2 s after /health 200) | 7.8 MB | $(mb idle_rss_kb) | – | target ≤ 6 MB |"
echo "| peak RSS (VmHWM) | 13.3 MB | $(awk -v kb="$peak" 'BEGIN { printf "%.1f MB", kb / 1024 }') | – | – |"
echo "| start → first /health 200 | 18 ms | $(value start_to_health_ms) ms | – | – |"
