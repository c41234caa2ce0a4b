//! The `vip_queue` consumer: log, decode, record through the [`OfferWriter`], and only then let
//! the message be acked.
//!
//! What happens to a delivery:
//! - undecodable or invalid: rejected, so the broker dead-letters it at once (retrying cannot
//!   fix a body);
//! - valid: recorded under its `message_id`; the handler returns (and the message is acked)
//!   only after the transaction holding it committed. A redelivery, here or at another
//!   replica, is a duplicate and records nothing new;
//! - the database is away: the handler waits for it (the writer keeps trying), holding the
//!   delivery; once the prefetch window is full the broker delivers nothing more. When the
//!   service stops meanwhile, the message is requeued;
//! - the database refused it: retried by the messaging layer, then dead-lettered.
//!
//! A message without a `message_id` (the Go original's publisher set none) gets one derived
//! from its body, so a redelivery of it is still recognised: the body names the account and
//! the instant it was read to the nanosecond, so two different notifications do not share it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::Utc;
use common::messaging::{Handler, HandlerError, IncomingMessage};
use common::notification::decode;
use metrics::{counter, histogram};
use tracing::{error, info, trace, warn};
use uuid::Uuid;

use crate::offers::{OfferWriter, Outcome, RecordError};
use common::contract::vipservice::{
    CONSUMED, DEAD_LETTERED, DUPLICATES_DROPPED, HANDLER_LATENCY, NO_OFFERS, NOTIFICATION_LAG,
    OFFERS_MADE,
};

/// Makes the consumer's metrics show on `/metrics` from the start, at zero, with their
/// meaning. Call after the recorder is installed.
pub fn describe_metrics() {
    for (name, meaning) in [
        (
            CONSUMED,
            "VIP notification deliveries handed to the consumer",
        ),
        (
            OFFERS_MADE,
            "VIP notifications that became an offer (at their commit)",
        ),
        (
            NO_OFFERS,
            "VIP notifications processed without an offer (the minimum interval)",
        ),
        (
            DUPLICATES_DROPPED,
            "Deliveries whose message id was processed before, by any replica",
        ),
        (
            DEAD_LETTERED,
            "Deliveries rejected as invalid and dead-lettered",
        ),
    ] {
        metrics::describe_counter!(name, meaning);
        counter!(name).increment(0);
    }
    metrics::describe_histogram!(
        HANDLER_LATENCY,
        metrics::Unit::Seconds,
        "From a delivery to the handler's answer, the offer's commit included"
    );
    metrics::describe_histogram!(
        NOTIFICATION_LAG,
        metrics::Unit::Seconds,
        "From the VIP read (the notification's readAt) to its delivery here: outbox and queue"
    );
}

/// Turns notifications into offers; share one per subscription.
pub struct OfferConsumer {
    writer: Arc<OfferWriter>,
}

impl OfferConsumer {
    pub fn new(writer: Arc<OfferWriter>) -> Self {
        Self { writer }
    }

    #[tracing::instrument(name = "record offer", skip_all, fields(message_id))]
    async fn process(&self, message: &IncomingMessage) -> Result<(), HandlerError> {
        let message_id = message_id_of(message);
        tracing::Span::current().record("message_id", message_id.as_str());
        info!(
            %message_id,
            redelivered = message.redelivered,
            "Got a message: {}",
            message.body_preview()
        );
        trace!(%message_id, body = %message.body_text(), "the whole body");
        counter!(CONSUMED).increment(1);
        let notification = decode(&message.body).map_err(|reason| {
            warn!(%message_id, %reason, "dead-lettering an invalid notification");
            counter!(DEAD_LETTERED).increment(1);
            HandlerError::Reject(reason.to_string())
        })?;
        // A clock behind the reader's counts as no lag rather than a negative one.
        let lag = (Utc::now() - notification.read_at)
            .to_std()
            .unwrap_or_default();
        histogram!(NOTIFICATION_LAG).record(lag.as_secs_f64());
        let outcome = self
            .writer
            .record(message_id.clone(), notification)
            .await
            .map_err(|cause| match cause {
                RecordError::Store(_) => {
                    error!(%message_id, error = &cause as &dyn std::error::Error, "cannot record the notification");
                    HandlerError::Retry(cause.to_string())
                }
                RecordError::Unavailable(_) | RecordError::WriterStopped => {
                    HandlerError::Requeue(cause.to_string())
                }
            })?;
        if outcome == Outcome::Duplicate {
            info!(%message_id, "dropping a notification processed before");
        }
        Ok(())
    }
}

#[async_trait]
impl Handler for OfferConsumer {
    async fn handle(&self, message: IncomingMessage) -> Result<(), HandlerError> {
        let started = Instant::now();
        let result = self.process(&message).await;
        histogram!(HANDLER_LATENCY).record(started.elapsed().as_secs_f64());
        result
    }
}

/// The message's own id, or one derived from its body (see the module docs): a name-based
/// UUID (v5), the same for the same body in every build, as an id stored on disk must be.
fn message_id_of(message: &IncomingMessage) -> String {
    match message.message_id.as_deref() {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("body-{}", Uuid::new_v5(&Uuid::NAMESPACE_OID, &message.body)),
    }
}

#[cfg(test)]
mod tests;
