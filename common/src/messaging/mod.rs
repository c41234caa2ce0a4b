//! Messaging over RabbitMQ (AMQP 0-9-1), the way both services need it.
//!
//! [`Messaging`] mirrors the operations of the Go original's messaging client (publish to an
//! exchange, publish on a queue, subscribe to an exchange, subscribe to a queue, close) and
//! fixes what it lost: [`AmqpMessaging`] keeps one named connection, publishes persistent
//! messages on a long-lived confirm-mode channel and returns only after the broker's confirm,
//! acks a delivery only after its handler succeeded, dead-letters what cannot be processed,
//! and after a lost connection reconnects and resumes every consumer by itself.

mod amqp;
mod error;
mod message;
mod settings;
mod status;
mod topology;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use amqp::AmqpMessaging;
pub use error::MessagingError;
pub use message::{Handler, HandlerError, HandlerFn, IncomingMessage, OutgoingMessage};
pub use settings::MessagingSettings;
pub use status::LinkStatus;
pub use topology::{Compat, ExchangeKind, ExchangeSpec, QueueSpec, QueueType};

/// The messaging operations the services use. Implemented over lapin by [`AmqpMessaging`];
/// with the `mock` feature, `MockMessaging` stands in for it in handler tests.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Messaging: Send + Sync + 'static {
    /// Publishes to `exchange` (declared on first use) with `routing_key`; returns once the
    /// broker confirmed it. A message no queue receives is an error, not a silent success.
    async fn publish(
        &self,
        exchange: &ExchangeSpec,
        routing_key: &str,
        message: OutgoingMessage,
    ) -> Result<(), MessagingError>;

    /// Publishes straight to a work queue (declared with its dead-letter queue on first use).
    async fn publish_on_queue(
        &self,
        queue: &QueueSpec,
        message: OutgoingMessage,
    ) -> Result<(), MessagingError>;

    /// Receives everything published to `exchange` that matches `binding_key`, on a queue of
    /// this instance's own that disappears when the instance stops. Its messages are handled
    /// one at a time, in order.
    async fn subscribe(
        &self,
        exchange: &ExchangeSpec,
        binding_key: &str,
        consumer_name: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<Subscription, MessagingError>;

    /// Takes a share of a work queue's messages; replicas subscribed to the same queue split
    /// them round-robin.
    async fn subscribe_to_queue(
        &self,
        queue: &QueueSpec,
        consumer_name: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<Subscription, MessagingError>;

    /// The connection's state, for `/health` and logs.
    fn status(&self) -> watch::Receiver<LinkStatus>;

    /// Stops consuming, lets in-flight handlers and publishes finish (bounded), then closes
    /// the connection.
    async fn close(&self) -> Result<(), MessagingError>;
}

/// A consumer that the client keeps alive (re-subscribing after reconnects and cancels) until
/// it is stopped or the client closes.
#[derive(Debug, Clone)]
pub struct Subscription {
    queue: String,
    active: watch::Receiver<bool>,
    stop: CancellationToken,
    /// Becomes `true` when the consumer has ended, its handlers done.
    ended: watch::Receiver<bool>,
}

impl Subscription {
    pub fn new(
        queue: String,
        active: watch::Receiver<bool>,
        stop: CancellationToken,
        ended: watch::Receiver<bool>,
    ) -> Self {
        Self {
            queue,
            active,
            stop,
            ended,
        }
    }

    /// Stops this consumer alone, e.g. so that a service stops taking work before it closes
    /// messaging: returns once its in-flight handlers have finished and been acked.
    pub async fn stop(&self) {
        self.stop.cancel();
        let mut ended = self.ended.clone();
        // The sender lives as long as the consumer task; if it is gone, so is the consumer.
        let _ = ended.wait_for(|ended| *ended).await;
    }

    /// The queue this subscription consumes from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Whether the broker currently has this consumer registered.
    pub fn is_active(&self) -> bool {
        *self.active.borrow()
    }

    /// Waits until the consumer is registered (`true`) or not (`false`).
    pub async fn wait_until(&mut self, active: bool) {
        // The sender lives as long as the client; if it is gone, so is the consumer.
        let _ = self.active.wait_for(|now| *now == active).await;
    }
}
