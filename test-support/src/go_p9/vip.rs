//! Go vipservice's consumer of `vip_queue`: `MessagingClient.SubscribeToQueue` and `onMessage`
//! (`vipservice/main.go`, `common/messaging/messagingclient.go`).

use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use lapin::{Connection, Consumer};

use super::inbox::Inbox;
use super::{
    GoP9Error, VIP_CONSUMER_TAG, close_connection, connect, declare_go_queue, open_channel,
};
use crate::Message;

/// Go's vipservice consuming VIP notifications. Go only prints each body (`Got a message: …`)
/// without parsing it; here every delivery is kept for the test, as a [`Message`] so that its
/// properties can be checked too.
pub struct GoVipService {
    inbox: Inbox<Message>,
    connection: Connection,
}

impl GoVipService {
    /// Subscribes to `queue` (Go: `vip_queue`) with Go's consumer tag `vipservice`.
    pub async fn start(amqp_url: &str, queue: &str) -> Result<Self, GoP9Error> {
        Self::start_with_tag(amqp_url, queue, VIP_CONSUMER_TAG).await
    }

    /// Subscribes as `SubscribeToQueue(queue, consumer_tag, onMessage)` does: its own
    /// connection and channel, the queue declared as the publisher declares it (non-durable,
    /// classic, no arguments), no Qos (unlimited prefetch), then `basic.consume` with
    /// `no_ack` (the broker acks on delivery; nothing is ever acked, nacked or rejected),
    /// neither exclusive nor no-local.
    ///
    /// Where Go panics (`Failed to register an Queue: Exception (406) …` when `queue` exists
    /// with other attributes), this returns the error, with the broker's reply text.
    pub async fn start_with_tag(
        amqp_url: &str,
        queue: &str,
        consumer_tag: &str,
    ) -> Result<Self, GoP9Error> {
        let GoVipConsumer {
            connection,
            consumer,
        } = GoVipConsumer::subscribe(amqp_url, queue, consumer_tag).await?;
        Ok(Self {
            inbox: Inbox::spawn(consumer, Message::from_delivery),
            connection,
        })
    }

    /// Every message delivered so far, in order.
    pub fn received(&self) -> Vec<Message> {
        self.inbox.items()
    }

    /// Waits until at least `count` messages arrived, the consumer ended or `limit` passed;
    /// returns all that arrived (the caller checks how many).
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Message> {
        self.inbox
            .wait_until(limit, |messages| messages.len() >= count)
            .await
    }

    /// Whether it still consumes. Like Go, it stops for good, silently, when the broker cancels
    /// the consumer (the queue was deleted) or the connection drops.
    pub fn is_consuming(&self) -> bool {
        self.inbox.consuming()
    }

    /// Closes the connection. Dropping the stand-in closes it as well, without waiting.
    pub async fn close(self) -> Result<(), GoP9Error> {
        close_connection(&self.connection).await
    }
}

/// Go's vipservice's subscription as a process runs it, for a stand-in that runs for hours
/// (`go-p9-vipservice`, the image the Swarm walkthrough replaces vipservice with): the same
/// subscription as [`GoVipService`], with each delivery handed over as it comes rather than
/// kept, so that memory stays flat.
pub struct GoVipConsumer {
    connection: Connection,
    consumer: Consumer,
}

impl GoVipConsumer {
    /// Subscribes exactly as [`GoVipService::start_with_tag`] does; a refused declare (Go
    /// panics: `Failed to register an Queue: Exception (406) …`) is the error.
    pub async fn subscribe(
        amqp_url: &str,
        queue: &str,
        consumer_tag: &str,
    ) -> Result<Self, GoP9Error> {
        let connection = connect(amqp_url).await?;
        match subscribe(&connection, queue, consumer_tag).await {
            Ok(consumer) => Ok(Self {
                connection,
                consumer,
            }),
            Err(error) => {
                let _ = close_connection(&connection).await;
                Err(error)
            }
        }
    }

    /// Go's `consumeLoop`: `on_message` with each delivery, in order, one at a time (they are
    /// already acked: auto-ack). Returns, as Go's loop does without a word, when the broker
    /// cancels the consumer (its queue was deleted) or the connection drops; nothing
    /// subscribes again. The connection closes when it returns (or its future is dropped).
    pub async fn for_each(mut self, mut on_message: impl FnMut(Message)) {
        while let Some(Ok(delivery)) = self.consumer.next().await {
            on_message(Message::from_delivery(&delivery));
        }
    }
}

/// Go's `SubscribeToQueue` on `connection`: its own channel (Go never closes it), `queue`
/// declared as the publisher declares it, no Qos, `basic.consume` with `no_ack`.
async fn subscribe(
    connection: &Connection,
    queue: &str,
    consumer_tag: &str,
) -> Result<Consumer, GoP9Error> {
    let channel = open_channel(connection).await?;
    let queue = declare_go_queue(&channel, queue).await?;
    let options = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    channel
        .basic_consume(
            queue.as_str().into(),
            consumer_tag.into(),
            options,
            FieldTable::default(),
        )
        .await
        .map_err(GoP9Error::at("basic.consume"))
}
