#!/usr/bin/env bash
# Helpers for the bench scripts that start services on the local broker under a vip_queue of
# their own (bench-memory.sh, bench-instructions.sh): sourced, never run.
#
#   delete_vip_queue QUEUE   deletes QUEUE and what the services declare beside it (QUEUE.dlq,
#                            the dead-letter exchange QUEUE.dlx), through rabbitmqctl (no
#                            management plugin needed); quiet, and true when none exists
delete_vip_queue() {
  rabbitmqctl -q delete_queue "$1" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "$1.dlq" >/dev/null 2>&1 || true
  rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$1.dlx\">>), false, <<\"goblog-bench\">>)." >/dev/null 2>&1 || true
}
