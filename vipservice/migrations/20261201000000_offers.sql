-- The offers database, the same on SQLite and PostgreSQL. Times are microseconds since the
-- Unix epoch (BIGINT), so that one query text and one decoding serve both.

-- The inbox: every notification processed, by its message id. A redelivery, a republish after
-- a lost confirm or the same message at another replica conflicts on the primary key and
-- makes nothing new. Rows older than `offers.processed_retention_days` are pruned.
CREATE TABLE IF NOT EXISTS processed_messages (
    message_id   TEXT   PRIMARY KEY,
    processed_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS processed_messages_by_time ON processed_messages (processed_at);

-- The offers made, one per notification at most (by the same message id, kept for good).
CREATE TABLE IF NOT EXISTS offers (
    message_id TEXT   PRIMARY KEY,
    account_id TEXT   NOT NULL,
    text       TEXT   NOT NULL,
    read_at    BIGINT NOT NULL,
    offered_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS offers_by_account ON offers (account_id, offered_at);

-- One row per account: the `readAt` of its latest offer. The offer rule's minimum interval
-- is decided by a conditional update of this row, which every replica's transaction locks.
CREATE TABLE IF NOT EXISTS offer_accounts (
    account_id         TEXT   PRIMARY KEY,
    last_offer_read_at BIGINT NOT NULL
);
