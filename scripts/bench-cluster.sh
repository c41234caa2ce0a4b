#!/usr/bin/env bash
# A three-node RabbitMQ cluster against one node of the same rabbitmq-server, under the whole
# system (scripts/loadtest.sh): steady on a 1-node cluster and on a 3-node cluster, each a
# cluster of its own (CLUSTER_NODES), so both run the same RabbitMQ the same way on ports of
# their own; then node-loss and rolling-restart on 3 nodes. Prints VIP reads/s, confirmed
# publishes/s, offers/s, commit → broker confirm p99 and read → offer p99 side by side with
# the ratio 3 nodes ÷ 1 node, and what each fault cost (seconds until its node was back and
# its queue member online, to the first offer after it and to the first offer of a read made
# after it, the slowest read → offer of a read made meanwhile; the run's longest stretch
# without a VIP read answered 200). The machine's own broker is not involved. Needs root (the
# nodes run as user rabbitmq) and jq. Figures: BENCHMARKS.md, "A three-node cluster".
#
#   scripts/bench-cluster.sh     # 4 runs, 3-4 min here
#
# Environment: SECONDS_PER_RUN (30, the steady runs), RATE (unbounded: the steady runs go as
# fast as answers come), FAULT_RATE (2000 req/s, the fault runs, as CI), OFFERS_DATABASE
# (sqlite), TEST_RABBITMQ_ROOT (the nodes' RabbitMQ: this machine's rabbitmq-server without
# it; 4.0 from scripts/ensure-rabbitmq4-root.sh's root with it), KEEP_RUNS=1 keeps each run's
# output (else kept only when a run failed). The 3 nodes share this machine's cores with each
# other and the services: the ratio is what replication costs on one machine, not across three.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/usage.sh
source scripts/lib/usage.sh
help_or_no_arguments "$@"
[ "$(id -u)" = 0 ] || { echo "bench-cluster: the clusters' nodes run as user rabbitmq: run it as root" >&2; exit 2; }
command -v jq >/dev/null 2>&1 || { echo "bench-cluster: needs jq (apt-get install jq)" >&2; exit 2; }

seconds=${SECONDS_PER_RUN:-30}
runs=$(mktemp -d "${TMPDIR:-/tmp}/goblog-bench-cluster.XXXXXX")
failed=()

# run NAME SCENARIO [VAR=VALUE...]: scripts/loadtest.sh SCENARIO with the environment given,
# its output in $runs/NAME.log, its JSON report in $runs/NAME.json.
run() {
  local name=$1 scenario=$2
  shift 2
  echo "==> $(date +%T) $name: scripts/loadtest.sh $scenario ($*; output in $runs/$name.log)"
  if ! env "$@" scripts/loadtest.sh "$scenario" --seconds "$seconds" >"$runs/$name.log" 2>&1; then
    failed+=("$name")
    echo "bench-cluster: $name failed; the end of its output:" >&2
    tail -n 25 "$runs/$name.log" >&2
  fi
  grep '^{' "$runs/$name.log" | tail -n 1 >"$runs/$name.json" || true
  [ -s "$runs/$name.json" ] || echo '{}' >"$runs/$name.json"
}

steady_env=(CLUSTER_NODES=1 DRAIN_SECONDS=300)
[ -z "${RATE:-}" ] || steady_env+=(RATE="$RATE")
run one-node steady "${steady_env[@]}"
steady_env[0]=CLUSTER_NODES=3
run three-nodes steady "${steady_env[@]}"
seconds=20
run node-loss node-loss RATE="${FAULT_RATE:-2000}"
run rolling-restart rolling-restart RATE="${FAULT_RATE:-2000}"

# fixed(D): a number with D decimals ("–" for none), for jq.
# shellcheck disable=SC2016 # $n is jq's
fixed='def fixed(d): if type != "number" then "–" else (. * pow(10; d) | round) as $n
  | ($n / pow(10; d) | floor | tostring)
    + (if d > 0 then "." + ($n % pow(10; d) | tostring | ("000000"[0:(d - length)]) + .) else "" end) end;'
version=$(grep -m 1 -o 'of RabbitMQ [^ ]* (Erlang [^),]*' "$runs/three-nodes.log" || echo "of RabbitMQ ? (Erlang ?")
echo
echo "steady, ${SECONDS_PER_RUN:-30} s, rate ${RATE:-unbounded}, OFFERS_DATABASE=${OFFERS_DATABASE:-sqlite}: nodes $version)"
jq -r -n --slurpfile one "$runs/one-node.json" --slurpfile three "$runs/three-nodes.json" "$fixed"'
  def row(name; f; d):
    ($one[0] | f) as $a | ($three[0] | f) as $b
    | [name, ($a | fixed(d)), ($b | fixed(d)),
       (if $a == null or $b == null or $a == 0 then "–" else ($b / $a | fixed(2)) end)]
    | @tsv;
  (["", "1 node", "3 nodes", "3 ÷ 1"] | @tsv),
  row("VIP reads 200/s"; if .vip_reads_ok then .vip_reads_ok / .seconds else null end; 0),
  row("confirmed publishes/s (whole run)"; .publish_per_s; 0),
  row("offers/s (whole run)"; .offers_per_s; 0),
  row("commit → broker confirm p99, ms"; .commit_to_confirm_p99_ms; 2),
  row("read → offer p99, ms"; .end_to_end.p99_ms; 1),
  row("longest without a VIP read 200, s"; .longest_without_vip_200.seconds; 2),
  row("lost"; .lost; 0),
  row("duplicate offers"; .duplicate_offers; 0),
  (["drained", ($one[0].drained | tostring), ($three[0].drained | tostring), ""] | @tsv)
' | column -t -s $'\t'

for name in node-loss rolling-restart; do
  echo
  jq -r --arg name "$name" --arg rate "${FAULT_RATE:-2000}" "$fixed"'
    "\($name), 3 nodes, rate \($rate), \(.seconds | fixed(0)) s of load: VIP reads 200 \(.vip_reads_ok), lost \(.lost), duplicate offers \(.duplicate_offers), drained \(.drained), longest without a VIP read 200 \(.longest_without_vip_200.seconds | fixed(2)) s, commit → broker confirm p99 \(.commit_to_confirm_p99_ms | fixed(1)) ms",
    (.faults // [] | .[] | "  \(if .action == "kill" then "SIGKILL" else "restart" end) node \(.node) (\(.chosen_as)): back \(.seconds_until_back | fixed(1)) s, member online \(.seconds_until_online | fixed(1)) s, HTTP errors \(.http_errors_during); first offer after it \(.seconds_to_first_offer | fixed(2)) s, of a read after it \(.seconds_to_first_offer_of_a_later_read | fixed(2)) s, slowest read → offer of a read meanwhile \(.slowest_read_to_offer_seconds | fixed(2)) s"),
    (if .fault_schedule_error then "  FAULT SCHEDULE FAILED: \(.fault_schedule_error)" else empty end)
  ' "$runs/$name.json"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "bench-cluster: failed: ${failed[*]}; their output is in $runs" >&2
  exit 1
fi
if [ "${KEEP_RUNS:-}" = 1 ]; then
  echo "each run's output: $runs"
else
  rm -rf "$runs"
fi
