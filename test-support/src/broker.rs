//! Direct access to the test broker, for arranging and checking what a test did.

use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::time::{Instant, timeout};

use crate::Message;

/// The broker tests use: `AMQP_URL`, or guest on 127.0.0.1:5672.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A connection for looking at queues from the outside. Its methods panic with a message
/// saying what failed: they are a test's assertions.
pub struct Broker {
    connection: Connection,
}

/// A queue's counters, as a passive declare reports them.
struct Counts {
    ready: u32,
    consumers: u32,
}

impl Broker {
    pub async fn connect() -> Self {
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .expect("the test broker answers at AMQP_URL (run scripts/ensure-broker.sh)");
        Self { connection }
    }

    /// A fresh channel: a failed passive declare closes the channel it ran on.
    async fn channel(&self) -> Channel {
        self.connection
            .create_channel()
            .await
            .expect("the test broker opens a channel")
    }

    /// The queue's counters, or `None` if it does not exist.
    async fn inspect(&self, queue: &str) -> Option<Counts> {
        let options = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let channel = self.channel().await;
        let counts = channel
            .queue_declare(queue.into(), options, FieldTable::default())
            .await
            .ok()
            .map(|q| Counts {
                ready: q.message_count(),
                consumers: q.consumer_count(),
            });
        // Polling must not pile up open channels (a connection has at most 2047).
        if counts.is_some() {
            let _ = channel.close(200, "inspected".into()).await;
        }
        counts
    }

    /// Messages ready in `queue` (not those delivered and unacked), or `None` if it does not
    /// exist.
    pub async fn queue_depth(&self, queue: &str) -> Option<u32> {
        self.inspect(queue).await.map(|q| q.ready)
    }

    /// Consumers registered on `queue` (0 if it does not exist).
    pub async fn consumer_count(&self, queue: &str) -> u32 {
        self.inspect(queue).await.map_or(0, |q| q.consumers)
    }

    /// Whether the queue exists.
    pub async fn exists(&self, queue: &str) -> bool {
        self.inspect(queue).await.is_some()
    }

    /// Whether the exchange exists.
    pub async fn exchange_exists(&self, exchange: &str) -> bool {
        let options = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        let channel = self.channel().await;
        let exists = channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Direct,
                options,
                FieldTable::default(),
            )
            .await
            .is_ok();
        if exists {
            let _ = channel.close(200, "inspected".into()).await;
        }
        exists
    }

    /// Polls until `check` holds, panicking with `what` after `limit`.
    pub async fn wait_until<F, Fut>(&self, what: &str, limit: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + limit;
        while !check().await {
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Takes (and acks) every message ready in `queue`, which must exist.
    pub async fn drain(&self, queue: &str) -> Vec<Message> {
        let channel = self.channel().await;
        let mut messages = Vec::new();
        while let Some(message) = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .unwrap_or_else(|e| panic!("basic.get from queue {queue:?}: {e}"))
        {
            message
                .delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .unwrap_or_else(|e| panic!("acking a message from {queue:?}: {e}"));
            messages.push(Message::from_delivery(&message.delivery));
        }
        let _ = channel.close(200, "drained".into()).await;
        messages
    }

    /// Publishes raw bytes straight into `queue` through the default exchange, the way a
    /// misbehaving producer would (persistent, with `message_id`); returns once the broker
    /// confirmed it, and panics if it did not or if `queue` does not exist.
    pub async fn publish_raw(&self, queue: &str, body: &[u8], message_id: &str) {
        let channel = self.channel().await;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap_or_else(|e| panic!("confirm.select before publishing to {queue:?}: {e}"));
        let options = BasicPublishOptions {
            mandatory: true,
            ..BasicPublishOptions::default()
        };
        let confirmation = channel
            .basic_publish(
                "".into(),
                queue.into(),
                options,
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_message_id(message_id.into()),
            )
            .await
            .unwrap_or_else(|e| panic!("publishing to {queue:?}: {e}"))
            .await
            .unwrap_or_else(|e| panic!("the confirm of a publish to {queue:?}: {e}"));
        match confirmation {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(_)) => panic!("published to {queue:?}, which does not exist"),
            other => panic!("the broker did not take a publish to {queue:?}: {other:?}"),
        }
        let _ = channel.close(200, "published".into()).await;
    }

    /// Declares `queue` durable, classic, without arguments: as a client other than the Go
    /// original (whose non-durable declare it then refuses) might have, for tests of the Go
    /// stand-ins against a queue they did not declare.
    pub async fn declare_durable(&self, queue: &str) {
        let channel = self.channel().await;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(queue.into(), durable, FieldTable::default())
            .await
            .unwrap_or_else(|e| panic!("declaring {queue:?} durable: {e}"));
        let _ = channel.close(200, "declared".into()).await;
    }

    /// Deletes queues and exchanges now (missing ones are fine), e.g. to see what a client does
    /// when its queue disappears. To delete what a test declared at its end, even when it
    /// fails, record it in a [`Cleanup`](crate::Cleanup).
    pub async fn delete(&self, queues: &[&str], exchanges: &[&str]) {
        for queue in queues {
            let _ = self
                .channel()
                .await
                .queue_delete((*queue).into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in exchanges {
            let _ = self
                .channel()
                .await
                .exchange_delete((*exchange).into(), ExchangeDeleteOptions::default())
                .await;
        }
    }

    /// Deletes a work queue with its dead-letter queue and exchange now.
    pub async fn delete_work_queue(&self, queue: &str) {
        let dlq = format!("{queue}.dlq");
        let dlx = format!("{queue}.dlx");
        self.delete(&[queue, &dlq], &[&dlx]).await;
    }

    /// Consumes `queue` with a throwaway consumer until `count` messages arrived or `limit`
    /// passed; returns what arrived (acked). It never takes more than `count`: what it has not
    /// returned stays in the queue.
    pub async fn consume(&self, queue: &str, count: usize, limit: Duration) -> Vec<Message> {
        let channel = self.channel().await;
        let prefetch = u16::try_from(count).unwrap_or(u16::MAX).max(1);
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .unwrap_or_else(|e| panic!("basic.qos before consuming {queue:?}: {e}"));
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("consuming from {queue:?}: {e}"));
        let mut got = Vec::new();
        let deadline = Instant::now() + limit;
        while got.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match timeout(left, consumer.next()).await {
                Ok(Some(Ok(delivery))) => {
                    delivery
                        .acker
                        .ack(BasicAckOptions::default())
                        .await
                        .unwrap_or_else(|e| panic!("acking a message from {queue:?}: {e}"));
                    got.push(Message::from_delivery(&delivery));
                }
                Ok(Some(Err(e))) => panic!("consuming from {queue:?}: {e}"),
                // Cancelled (the queue was deleted) or out of time: the caller checks the count.
                Ok(None) | Err(_) => break,
            }
        }
        let _ = channel.close(200, "consumed".into()).await;
        got
    }
}
