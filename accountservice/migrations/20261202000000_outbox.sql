-- accountservice's outbox, the same on SQLite and PostgreSQL. Times are microseconds since the
-- Unix epoch (BIGINT), so that one query text and one decoding serve both.

-- Every VIP notification from the moment its read is answered until the broker confirmed it.
-- The replica that wrote it leases it (`owner`, `leased_until`) and publishes it at once; an
-- entry whose lease has passed (its replica died or could not publish it) is claimed by
-- any replica's relay, which leases it in turn.
CREATE TABLE IF NOT EXISTS outbox (
    message_id   TEXT   PRIMARY KEY,
    body         TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    owner        TEXT   NOT NULL,
    leased_until BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_lease ON outbox (leased_until);
CREATE INDEX IF NOT EXISTS outbox_by_owner ON outbox (owner);

-- One row the writer updates to learn whether the database takes writes again (after a full
-- disk, say) while no request writes.
CREATE TABLE IF NOT EXISTS outbox_probe (
    id        INTEGER PRIMARY KEY,
    probed_at BIGINT  NOT NULL
);
