//! The `vip_queue` consumer: log, decode, claim the notification on the ledger, and let the
//! message be acked only once this store applied the claim.
//!
//! What happens to a delivery:
//! - undecodable or invalid: rejected, so the broker dead-letters it at once (retrying cannot
//!   fix a body);
//! - valid: its claim (with the notification) is appended to the ledger, and the handler
//!   returns (and the message is acked) once the ledger reader applied it in this store: the
//!   offer, or the finding that the notification was decided before, is durable by then
//!   (see [`crate::ledger`]);
//! - the store failed to apply it: retried by the messaging layer, then dead-lettered;
//! - the service is stopping before the claim is applied: requeued. A claim already in the
//!   ledger still counts: this replica applies it at its next start, and another replica's
//!   later claim of the requeued message is dropped as a duplicate.
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
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::ledger::{Announcer, Settlements};
use crate::metrics::{CONSUMED, DEAD_LETTERED, HANDLER_LATENCY};
use crate::offers::Claim;

/// Turns notifications into offers; share one per subscription.
pub struct OfferConsumer {
    announcer: Arc<Announcer>,
    settlements: Arc<Settlements>,
    /// Cancelled when the service stops waiting for the ledger: pending deliveries requeue.
    stopping: CancellationToken,
}

impl OfferConsumer {
    pub fn new(
        announcer: Arc<Announcer>,
        settlements: Arc<Settlements>,
        stopping: CancellationToken,
    ) -> Self {
        Self {
            announcer,
            settlements,
            stopping,
        }
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
        let settled = self.settlements.expect(&message_id);
        let claim = Claim {
            message_id,
            account_id: notification.account_id,
            read_at: notification.read_at,
        };
        let stopping = || HandlerError::Requeue("stopping before the ledger ordered it".into());
        tokio::select! {
            announced = self.announcer.announce(claim) => {
                announced.map_err(|cause| HandlerError::Requeue(cause.to_string()))?;
            }
            () = self.stopping.cancelled() => return Err(stopping()),
        }
        tokio::select! {
            settled = settled => match settled {
                Ok(Ok(())) => Ok(()),
                Ok(Err(cause)) => Err(HandlerError::Retry(cause.to_string())),
                Err(_) => Err(stopping()),
            },
            () = self.stopping.cancelled() => Err(stopping()),
        }
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
