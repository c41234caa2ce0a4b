//! The Spring Cloud Bus as the Go services use it: `MessagingClient.Subscribe(exchange, "topic",
//! appName, config.HandleRefreshEvent)`.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeleteOptions,
};
use lapin::protocol::constants::REPLY_SUCCESS;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};

use super::event::BusEvent;
use super::inbox::Inbox;
use super::{GoP9Error, close_connection, connect, declare_go_queue, open_channel};
use crate::{Cleanup, Message};

/// A message the bus listener received, and what Go made of it.
#[derive(Debug, Clone, PartialEq)]
pub struct BusMessage {
    pub message: Message,
    /// The event as Go parses it, or why the parse failed (Go logs `Problem parsing
    /// UpdateToken: …` and does nothing else).
    pub event: Result<BusEvent, String>,
    /// Whether Go would reload its configuration: the event parsed and
    /// [`is_for`](BusEvent::is_for) the listener's app name.
    pub is_refresh: bool,
}

/// One Go service's subscription to the bus, which never publishes anything (Go sends no
/// `AckRemoteApplicationEvent`).
///
/// Go's queue is server-named, not exclusive and not auto-delete, so it outlives the service
/// and such queues pile up on the broker. This one is deleted by [`close`](Self::close) or on
/// drop, so that tests leave nothing behind.
pub struct GoBusListener {
    inbox: Inbox<BusMessage>,
    connection: Connection,
    url: String,
    queue: String,
    /// How many refreshes [`wait_for_refresh`](Self::wait_for_refresh) has returned.
    refreshes_taken: Mutex<usize>,
    deleted: bool,
}

impl GoBusListener {
    /// Subscribes as `app_name` (Go: `accountservice` or `vipservice`) to `exchange` (Go:
    /// `springCloudBus`), on a connection of its own: declares `exchange` as a durable topic
    /// exchange (not auto-delete, not internal), a server-named queue (non-durable, not
    /// exclusive, not auto-delete), binds it with the routing key `exchange` (the key Spring's
    /// producer publishes with), and consumes it with the tag `app_name`, auto-ack, no Qos.
    ///
    /// A refusal is returned (vipservice panics on it; accountservice ignores it and runs
    /// without the bus), e.g. a 406 when `exchange` exists with other attributes.
    pub async fn start(amqp_url: &str, exchange: &str, app_name: &str) -> Result<Self, GoP9Error> {
        let connection = connect(amqp_url).await?;
        let declared = async {
            let channel = open_channel(&connection).await?;
            declare_bus_exchange(&channel, exchange).await?;
            let queue = declare_go_queue(&channel, "").await?;
            Ok::<_, GoP9Error>((channel, queue))
        };
        let (channel, queue) = match declared.await {
            Ok(declared) => declared,
            Err(error) => {
                let _ = close_connection(&connection).await;
                return Err(error);
            }
        };
        match subscribe(&channel, &queue, exchange, app_name).await {
            Ok(inbox) => Ok(Self {
                inbox,
                connection,
                url: amqp_url.to_owned(),
                queue,
                refreshes_taken: Mutex::new(0),
                deleted: false,
            }),
            Err(error) => {
                let _ = delete_queue(&connection, &queue).await;
                let _ = close_connection(&connection).await;
                Err(error)
            }
        }
    }

    /// The server-named queue (`amq.gen-…`).
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> Vec<BusMessage> {
        self.inbox.items()
    }

    /// Waits until at least `count` messages arrived, the consumer ended or `limit` passed;
    /// returns all that arrived (the caller checks how many).
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<BusMessage> {
        self.inbox
            .wait_until(limit, |messages| messages.len() >= count)
            .await
    }

    /// The events that made Go reload its configuration so far, in order.
    pub fn refreshes(&self) -> Vec<BusEvent> {
        refreshes(&self.inbox.items()).cloned().collect()
    }

    /// The next refresh this method has not returned yet, waiting for it up to `limit`; `None`
    /// if none came (or the consumer ended).
    pub async fn wait_for_refresh(&self, limit: Duration) -> Option<BusEvent> {
        let taken = *self.taken();
        let received = self
            .inbox
            .wait_until(limit, |messages| refreshes(messages).count() > taken)
            .await;
        let next = refreshes(&received).nth(taken).cloned()?;
        *self.taken() = taken + 1;
        Some(next)
    }

    /// Whether it still consumes (it stops for good, as Go does, when its queue is deleted or
    /// the connection drops).
    pub fn is_consuming(&self) -> bool {
        self.inbox.consuming()
    }

    /// Deletes the queue and closes the connection.
    pub async fn close(mut self) -> Result<(), GoP9Error> {
        delete_queue(&self.connection, &self.queue).await?;
        self.deleted = true;
        close_connection(&self.connection).await
    }

    fn taken(&self) -> std::sync::MutexGuard<'_, usize> {
        self.refreshes_taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for GoBusListener {
    /// Deletes the queue through a [`Cleanup`] guard: `Drop` cannot await, and the guard deletes
    /// on a thread and connection of its own, even while a failing test unwinds.
    fn drop(&mut self) {
        if !self.deleted {
            Cleanup::with_url(self.url.as_str()).queue(self.queue.as_str());
        }
    }
}

fn refreshes(messages: &[BusMessage]) -> impl Iterator<Item = &BusEvent> {
    messages
        .iter()
        .filter(|m| m.is_refresh)
        .filter_map(|m| m.event.as_ref().ok())
}

/// The exchange as Go's `Subscribe` (and Spring's binder) declares it.
pub(super) async fn declare_bus_exchange(
    channel: &Channel,
    exchange: &str,
) -> Result<(), GoP9Error> {
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            options,
            FieldTable::default(),
        )
        .await
        .map_err(GoP9Error::at("exchange.declare"))
}

/// Binds `queue` with the exchange's name as key and consumes it as `app_name`.
async fn subscribe(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    app_name: &str,
) -> Result<Inbox<BusMessage>, GoP9Error> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            exchange.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(GoP9Error::at("queue.bind"))?;
    let options = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let consumer = channel
        .basic_consume(
            queue.into(),
            app_name.into(),
            options,
            FieldTable::default(),
        )
        .await
        .map_err(GoP9Error::at("basic.consume"))?;
    let app_name = app_name.to_owned();
    Ok(Inbox::spawn(consumer, move |delivery| {
        let event = BusEvent::parse(&delivery.data);
        let is_refresh = event.as_ref().is_ok_and(|event| event.is_for(&app_name));
        BusMessage {
            message: Message::from_delivery(delivery),
            event,
            is_refresh,
        }
    }))
}

async fn delete_queue(connection: &Connection, queue: &str) -> Result<(), GoP9Error> {
    let channel = open_channel(connection).await?;
    channel
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await
        .map_err(GoP9Error::at("queue.delete"))?;
    let _ = channel.close(REPLY_SUCCESS, "".into()).await;
    Ok(())
}
