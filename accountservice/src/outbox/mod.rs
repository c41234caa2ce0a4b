//! The outbox: every VIP notification is durable before its read is answered.
//!
//! A VIP read appends its notification through the [`OutboxWriter`] (group commit: one fsync
//! for many reads) and answers once it is committed, without waiting for the broker. The
//! [`Relay`] publishes it from there the moment it is committed and removes it on the broker's
//! confirm. `kill -9` at any moment, in any broker state, loses nothing answered 200: what was
//! not confirmed is still in the table, and a relay (this replica's after a restart, or any
//! other sharing the database) publishes it once its lease passes.
//!
//! The table lives in [`OutboxDb`], a database through sqlx: a SQLite file by default, the
//! stack's PostgreSQL in Swarm, so a replaced task's outbox is its successor's.

pub(crate) mod db;
mod relay;
mod writer;

pub use db::OutboxDb;
pub use relay::Relay;
pub use writer::{AppendError, OutboxDown, OutboxWriter, Settler};

/// The names of the notification metrics on `/metrics`, part of the wire contract.
pub use common::contract::accountservice as metric;

/// A VIP notification in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The stable id the message is published with, so consumers can drop duplicates.
    pub message_id: String,
    /// The message body: the notification's JSON.
    pub body: String,
    /// The W3C `traceparent` of the read that wrote it, for the publish to continue its trace.
    pub trace_parent: Option<String>,
}

/// Makes the notification metrics show on `/metrics` from the start, at zero, with their
/// meaning. Call after the recorder is installed.
pub fn describe_metrics() {
    for (name, meaning) in [
        (metric::PUBLISHED, "VIP notifications the broker confirmed"),
        (
            metric::FAILED,
            "VIP notification publishes that failed or timed out (the entry stays in the outbox)",
        ),
        (metric::BUFFERED, "VIP notifications written to the outbox"),
    ] {
        metrics::describe_counter!(name, meaning);
        metrics::counter!(name).increment(0);
    }
    metrics::describe_gauge!(
        metric::OUTBOX_DEPTH,
        "VIP notifications in the outbox, not yet confirmed by the broker"
    );
    metrics::describe_gauge!(
        metric::OUTBOX_OLDEST_AGE,
        metrics::Unit::Seconds,
        "Age of the oldest VIP notification in the outbox"
    );
    metrics::describe_histogram!(
        metric::COMMIT_TO_CONFIRM,
        metrics::Unit::Seconds,
        "From a VIP notification's commit to the outbox to the broker's confirm (published straight after the commit)"
    );
}

#[cfg(test)]
mod tests;
