//! Direct access to the test broker, for arranging and checking what a test did.

use std::time::Duration;

use futures_lite::StreamExt;
use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ExchangeDeleteOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio::time::{Instant, timeout};

/// The broker tests use: `AMQP_URL`, or guest on 127.0.0.1:5672.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A connection for looking at queues from the outside.
pub struct Broker {
    connection: Connection,
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
        self.connection.create_channel().await.expect("channel")
    }

    /// The queue's counters, or `None` if it does not exist.
    async fn inspect(&self, queue: &str) -> Option<lapin::Queue> {
        let options = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        self.channel()
            .await
            .queue_declare(queue.into(), options, FieldTable::default())
            .await
            .ok()
    }

    /// Messages ready in `queue`, or `None` if it does not exist.
    pub async fn queue_depth(&self, queue: &str) -> Option<u32> {
        self.inspect(queue).await.map(|q| q.message_count())
    }

    /// Consumers registered on `queue` (0 if it does not exist).
    pub async fn consumer_count(&self, queue: &str) -> u32 {
        self.inspect(queue).await.map_or(0, |q| q.consumer_count())
    }

    pub async fn exists(&self, queue: &str) -> bool {
        self.queue_depth(queue).await.is_some()
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

    /// Takes (and acks) every message ready in `queue`.
    pub async fn drain(&self, queue: &str) -> Vec<BasicGetMessage> {
        let channel = self.channel().await;
        let mut messages = Vec::new();
        while let Ok(Some(message)) = channel
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
        {
            message
                .delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .expect("ack");
            messages.push(message);
        }
        messages
    }

    /// Publishes raw bytes straight into `queue` through the default exchange, the way a
    /// misbehaving producer would.
    pub async fn publish_raw(&self, queue: &str, body: &[u8], message_id: &str) {
        let channel = self.channel().await;
        channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_message_id(message_id.into()),
            )
            .await
            .expect("publish")
            .await
            .expect("publish confirm");
    }

    /// Deletes queues and exchanges a test made (missing ones are fine).
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

    /// Deletes a work queue with its dead-letter queue and exchange.
    pub async fn delete_work_queue(&self, queue: &str) {
        let dlq = format!("{queue}.dlq");
        let dlx = format!("{queue}.dlx");
        self.delete(&[queue, &dlq], &[&dlx]).await;
    }

    /// Consumes `queue` with a throwaway consumer until `count` messages arrived or `limit`
    /// passed; returns what arrived (acked).
    pub async fn consume(
        &self,
        queue: &str,
        count: usize,
        limit: Duration,
    ) -> Vec<lapin::message::Delivery> {
        let channel = self.channel().await;
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
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
                        .expect("ack");
                    got.push(delivery);
                }
                _ => break,
            }
        }
        got
    }
}
