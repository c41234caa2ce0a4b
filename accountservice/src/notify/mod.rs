//! VIP notifications that are never lost.
//!
//! [`Notifier`] publishes each notification from a task of its own, so a response never waits
//! for the broker; a notification whose publish fails, times out, or finds too many publishes
//! under way goes to the durable outbox instead. [`Relay`] drains the outbox, oldest first,
//! whenever the broker is connected, including what a previous run left.

mod batcher;
mod notifier;
mod relay;

pub use notifier::Notifier;
pub use relay::Relay;

use std::sync::Arc;

use crate::store::{Outbox, OutboxEntry, StoreError};

/// The names of the notification metrics on `/metrics`, part of the wire contract.
pub use common::contract::accountservice as metric;

/// Makes the notification metrics show on `/metrics` from the start, at zero, with their
/// meaning. Call after the recorder is installed.
pub fn describe_metrics() {
    for (name, meaning) in [
        (metric::PUBLISHED, "VIP notifications the broker confirmed"),
        (
            metric::FAILED,
            "VIP notification publishes that failed or timed out",
        ),
        (metric::BUFFERED, "VIP notifications written to the outbox"),
    ] {
        metrics::describe_counter!(name, meaning);
        metrics::counter!(name).increment(0);
    }
    metrics::describe_gauge!(
        metric::OUTBOX_DEPTH,
        "VIP notifications waiting in the outbox"
    );
}

/// Runs a blocking outbox call (its writes wait for an fsync) off the async workers, and
/// refreshes the depth gauge afterwards.
async fn with_outbox<T: Send + 'static>(
    outbox: &Arc<dyn Outbox>,
    call: impl FnOnce(&dyn Outbox) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let outbox = Arc::clone(outbox);
    let joined = tokio::task::spawn_blocking(move || {
        let result = call(outbox.as_ref());
        if let Ok(depth) = outbox.depth() {
            #[allow(clippy::cast_precision_loss)] // A gauge; exact beyond 2^53 is not needed.
            metrics::gauge!(metric::OUTBOX_DEPTH).set(depth as f64);
        }
        result
    })
    .await;
    match joined {
        Ok(result) => result,
        // The closure panicked (the runtime never cancels blocking tasks): re-raise it.
        Err(join_error) => std::panic::resume_unwind(join_error.into_panic()),
    }
}

/// Persists `entries`, counting them as buffered, and logs (cannot do more) if the store fails.
async fn buffer(outbox: &Arc<dyn Outbox>, entries: Vec<OutboxEntry>) {
    let count = entries.len();
    match with_outbox(outbox, move |outbox| outbox.append(&entries)).await {
        Ok(_) => metrics::counter!(metric::BUFFERED).increment(count as u64),
        Err(error) => tracing::error!(
            error = &error as &dyn std::error::Error,
            count,
            "VIP notifications lost: the outbox cannot be written"
        ),
    }
}
