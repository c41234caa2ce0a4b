//! The `vip_queue` consumer: log, decode, record through the [`OfferWriter`], and only then let
//! the message be acked.
//!
//! What happens to a delivery:
//! - undecodable or invalid: rejected, so the broker dead-letters it at once (retrying cannot
//!   fix a body);
//! - valid: recorded under its `message_id`; the handler returns (and the message is acked)
//!   only after the group commit holding it is durable. A redelivery is a duplicate and
//!   records nothing new;
//! - the store failed: retried by the messaging layer, then dead-lettered.
//!
//! A message without a `message_id` (the Go original's publisher set none) gets one derived
//! from its body, so a redelivery of it is still recognised: the body names the account and
//! the instant it was read to the nanosecond, so two different notifications do not share it.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use common::messaging::{Handler, HandlerError, IncomingMessage};
use common::notification::decode;
use metrics::{counter, histogram};
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::offers::{OfferWriter, Outcome};

/// Deliveries handed to the consumer.
pub const CONSUMED: &str = "vip_notifications_consumed_total";
/// Notifications that became an offer.
pub const OFFERS_MADE: &str = "vip_offers_made_total";
/// Notifications processed without an offer (the rule's minimum interval).
pub const NO_OFFERS: &str = "vip_no_offers_total";
/// Deliveries whose `message_id` was processed before.
pub const DUPLICATES_DROPPED: &str = "vip_duplicates_dropped_total";
/// Deliveries rejected as invalid, hence dead-lettered at once.
pub const DEAD_LETTERED: &str = "vip_dead_lettered_total";
/// Time from delivery to the handler's answer, commit included.
pub const HANDLER_LATENCY: &str = "vip_handler_duration_seconds";

/// Turns notifications into offers; share one per subscription.
pub struct OfferConsumer {
    writer: Arc<OfferWriter>,
}

impl OfferConsumer {
    pub fn new(writer: Arc<OfferWriter>) -> Self {
        Self { writer }
    }

    async fn process(&self, message: &IncomingMessage) -> Result<(), HandlerError> {
        let message_id = message_id_of(message);
        info!(
            %message_id,
            redelivered = message.redelivered,
            "Got a message: {}",
            message.body_text()
        );
        counter!(CONSUMED).increment(1);
        let notification = decode(&message.body).map_err(|reason| {
            warn!(%message_id, %reason, "dead-lettering an invalid notification");
            counter!(DEAD_LETTERED).increment(1);
            HandlerError::Reject(reason.to_string())
        })?;
        let outcome = self
            .writer
            .record(message_id.clone(), notification)
            .await
            .map_err(|cause| {
                error!(%message_id, error = &cause as &dyn std::error::Error, "cannot record the notification");
                HandlerError::Retry(cause.to_string())
            })?;
        match outcome {
            Outcome::Offered => counter!(OFFERS_MADE).increment(1),
            Outcome::NoOffer => counter!(NO_OFFERS).increment(1),
            Outcome::Duplicate => {
                info!(%message_id, "dropping a notification processed before");
                counter!(DUPLICATES_DROPPED).increment(1);
            }
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
