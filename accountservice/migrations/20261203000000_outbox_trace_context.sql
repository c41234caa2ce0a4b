-- The W3C traceparent of the request that wrote each entry, so that the relay's publish (maybe
-- after an outage, from another replica) continues that request's trace. NULL: none (traces
-- are not exported, or the entry predates this column).
ALTER TABLE outbox ADD COLUMN trace_parent TEXT;
