//! Consumers that stay subscribed: each runs on its own channel with its own QoS, hands
//! deliveries to concurrent handler tasks (up to the prefetch), acks after the handler
//! succeeded, retries transient failures a bounded number of times, dead-letters the rest, and
//! re-subscribes after a lost connection or a broker-side cancel.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ErrorKind};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::time::{sleep, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, warn};

use super::connect::reconnect_delays;
use super::publish::{self, Target};
use super::session::{Declared, Session};
use super::{Shared, declare};
use crate::messaging::{
    Compat, ExchangeSpec, Handler, HandlerError, IncomingMessage, MessagingError, OutgoingMessage,
    QueueSpec,
};
use crate::telemetry;

/// How long an ack, nack or cancel may take before we give up on it (the broker then
/// redelivers, or stops delivering when the channel closes).
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// The queue a consumer reads, and how it comes to exist.
pub(super) enum Source {
    WorkQueue(QueueSpec),
    /// This instance's own queue bound to an exchange.
    Exchange {
        exchange: ExchangeSpec,
        binding_key: String,
        queue: String,
    },
}

impl Source {
    /// Where the consumer itself dead-letters, if the queue cannot (a Go-P9 queue has no
    /// dead-letter exchange); `None`: a reject sends the message to the broker's.
    fn dead_letter_queue(&self) -> Option<QueueSpec> {
        match self {
            Self::WorkQueue(spec) if spec.compat == Compat::GoP9 => Some(QueueSpec {
                name: spec.dead_letter_queue(),
                ..spec.clone()
            }),
            _ => None,
        }
    }

    /// Work queues take `prefetch` messages at a time, handled concurrently; an exchange
    /// subscription (the config bus) handles its events one at a time, in order.
    fn prefetch(&self, work_queue_prefetch: u16) -> u16 {
        match self {
            Self::WorkQueue(_) => work_queue_prefetch.max(1),
            Self::Exchange { .. } => 1,
        }
    }

    pub(super) fn queue(&self) -> &str {
        match self {
            Self::WorkQueue(spec) => &spec.name,
            Self::Exchange { queue, .. } => queue,
        }
    }
}

pub(super) struct Consumer {
    pub(super) source: Source,
    pub(super) tag: String,
    pub(super) handler: Arc<dyn Handler>,
    pub(super) active: watch::Sender<bool>,
    /// Cancelled by `close` (for every consumer) or by [`crate::messaging::Subscription::stop`].
    pub(super) stop: CancellationToken,
}

/// How one subscription on one channel ended.
enum End {
    /// `close` or `Subscription::stop` asked the consumer to stop.
    Stopped,
    ConnectionLost,
    /// The broker cancelled the consumer (its queue was deleted, ...).
    Cancelled,
}

/// Keeps `consumer` subscribed until the client closes. The outcome of the first subscription
/// is sent on `first`, so `subscribe` can report a refused declaration to its caller.
pub(super) async fn run(
    shared: Arc<Shared>,
    consumer: Consumer,
    first: oneshot::Sender<Result<(), MessagingError>>,
) {
    let mut first = Some(first);
    let mut delays = reconnect_delays(&shared.settings);
    loop {
        let session = tokio::select! {
            () = consumer.stop.cancelled() => break,
            session = shared.live_session() => session,
        };
        let Some(session) = session else {
            break;
        };
        let outcome = subscribe_and_consume(&shared, &session, &consumer, &mut first).await;
        consumer.active.send_replace(false);
        match outcome {
            Ok(End::Stopped) => break,
            Ok(End::ConnectionLost) => {
                delays = reconnect_delays(&shared.settings);
                continue;
            }
            Ok(End::Cancelled) => {
                warn!(
                    queue = consumer.source.queue(),
                    "the broker cancelled the consumer (queue deleted?); re-subscribing"
                );
                delays = reconnect_delays(&shared.settings);
            }
            // The connection went while subscribing: subscribe on the next one, even the first
            // time, since that is a passing failure the client recovers from.
            Err(error) if !session.is_alive() && error.is_transient() => continue,
            Err(error) if is_passing(&error) => {
                debug!(queue = consumer.source.queue(), %error, "could not subscribe yet; retrying");
            }
            Err(error) => {
                if let Some(first) = first.take() {
                    let _ = first.send(Err(error));
                    return;
                }
                error!(queue = consumer.source.queue(), %error, "could not subscribe; retrying");
            }
        }
        let delay = delays.next().unwrap_or(shared.settings.reconnect_max_delay);
        tokio::select! {
            () = consumer.stop.cancelled() => break,
            () = sleep(delay) => {}
        }
    }
    if let Some(first) = first.take() {
        let _ = first.send(Err(MessagingError::Closed));
    }
}

/// Refusals that pass by themselves: a queue declared a moment ago (by this or another client)
/// may refuse consumers until its member on the node has started ("does not have a replica on
/// the local node"), and a hard error closes the connection: subscribe again.
fn is_passing(error: &MessagingError) -> bool {
    let MessagingError::Broker { source, .. } = error else {
        return false;
    };
    let ErrorKind::ProtocolError(amqp) = source.kind() else {
        return false;
    };
    match amqp.kind() {
        AMQPErrorKind::Hard(_) => true,
        AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED) => amqp
            .get_message()
            .as_str()
            .contains("does not have a replica on the local node"),
        AMQPErrorKind::Soft(_) => false,
    }
}

async fn subscribe_and_consume(
    shared: &Arc<Shared>,
    session: &Session,
    consumer: &Consumer,
    first: &mut Option<oneshot::Sender<Result<(), MessagingError>>>,
) -> Result<End, MessagingError> {
    let queue = consumer.source.queue();
    let broker = |operation: &str| {
        let operation = format!("{operation} for queue {queue:?}");
        move |source| MessagingError::Broker { operation, source }
    };
    // Declaring on the consuming channel itself: a consumer never races its own queue.
    let prefetch = consumer.source.prefetch(shared.settings.prefetch);
    let channel = session
        .connection
        .create_channel()
        .await
        .map_err(broker("opening a channel"))?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(broker("setting the prefetch"))?;
    match &consumer.source {
        Source::WorkQueue(spec) => {
            declare::work_queue(&channel, spec, shared.settings.delivery_limit).await?
        }
        Source::Exchange {
            exchange,
            binding_key,
            queue,
        } => {
            declare::instance_queue(&channel, exchange, queue, binding_key).await?;
        }
    }
    let mut deliveries = channel
        .basic_consume(
            ShortString::from(queue),
            ShortString::from(consumer.tag.as_str()),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|source| {
            MessagingError::needing("read", format!("consuming from queue {queue:?}"), source)
        })?;
    consumer.active.send_replace(true);
    if let Some(first) = first.take() {
        let _ = first.send(Ok(()));
    }
    info!(queue, consumer = %consumer.tag, prefetch, "consuming");
    let dead_letter_queue = consumer.source.dead_letter_queue().map(Arc::new);

    let slots = Arc::new(Semaphore::new(usize::from(prefetch)));
    loop {
        let delivery = tokio::select! {
            biased;
            () = consumer.stop.cancelled() => {
                // Deliveries already buffered go back to the queue when the channel closes.
                let cancel = channel.basic_cancel(ShortString::from(consumer.tag.as_str()), BasicCancelOptions::default());
                let _ = timeout(ACK_TIMEOUT, cancel).await;
                consumer.active.send_replace(false);
                // Let this consumer's handlers finish and ack, then close its channel while the
                // connection is still open.
                let _ = timeout(shared.settings.close_grace, slots.acquire_many(u32::from(prefetch))).await;
                let _ = timeout(ACK_TIMEOUT, channel.close(200, "consumer stopped".into())).await;
                return Ok(End::Stopped);
            }
            () = session.lost.cancelled() => return Ok(End::ConnectionLost),
            delivery = deliveries.next() => delivery,
        };
        match delivery {
            Some(Ok(delivery)) => {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return Ok(End::Stopped);
                };
                let task = Delivered {
                    delivery,
                    queue: queue.to_owned(),
                    dead_letter_queue: dead_letter_queue.clone(),
                    handler: consumer.handler.clone(),
                    shared: shared.clone(),
                    channel: channel.clone(),
                };
                // The span starts with the handler, not with the delivery: a prefetched
                // message waiting for a slot is not being processed yet.
                shared.handlers.spawn(async move {
                    let span = task.span();
                    task.process().instrument(span).await;
                    drop(slot);
                });
            }
            Some(Err(error)) if session.is_alive() => {
                return Err(MessagingError::Broker {
                    operation: format!("consuming from queue {queue:?}"),
                    source: error,
                });
            }
            Some(Err(_)) => return Ok(End::ConnectionLost),
            None if session.is_alive() => return Ok(End::Cancelled),
            None => return Ok(End::ConnectionLost),
        }
    }
}

/// Whether an ack or a nack reached the broker in time.
type Acked = Result<lapin::Result<bool>, tokio::time::error::Elapsed>;

/// One delivery on its way through the handler.
struct Delivered {
    delivery: Delivery,
    queue: String,
    /// See [`Source::dead_letter_queue`].
    dead_letter_queue: Option<Arc<QueueSpec>>,
    handler: Arc<dyn Handler>,
    shared: Arc<Shared>,
    /// Keeps the consuming channel open until this delivery is acked, even after its consumer
    /// was cancelled for shutdown.
    channel: Channel,
}

impl Delivered {
    /// A CONSUMER span `process <queue>`, as OpenTelemetry's messaging conventions name it.
    fn span(&self) -> tracing::Span {
        let properties = &self.delivery.properties;
        let message_id = properties.message_id().as_ref().map(ShortString::as_str);
        let span = tracing::info_span!(
            "process",
            messaging.destination.name = %self.queue,
            messaging.rabbitmq.destination.routing_key = %self.delivery.routing_key,
            messaging.message.id = message_id.unwrap_or_default(),
            messaging.rabbitmq.message.delivery_tag = self.delivery.delivery_tag,
            otel.name = tracing::field::Empty,
            otel.kind = tracing::field::Empty,
            messaging.system = tracing::field::Empty,
            messaging.operation.type = tracing::field::Empty,
        );
        telemetry::describe(
            &span,
            || format!("process {}", self.queue),
            "consumer",
            &[
                ("messaging.system", "rabbitmq"),
                ("messaging.operation.type", "process"),
            ],
        );
        if telemetry::enabled() {
            let header = |name: &str| {
                let value = properties.headers().as_ref()?.inner().get(name)?;
                match value {
                    AMQPValue::LongString(text) => std::str::from_utf8(text.as_bytes()).ok(),
                    _ => None,
                }
            };
            let carried = telemetry::Carried {
                traceparent: header("traceparent"),
                tracestate: header("tracestate"),
            };
            telemetry::set_parent(&span, carried, true);
        }
        span
    }

    async fn process(self) {
        let message = incoming(&self.delivery);
        let message_id = message.message_id.clone().unwrap_or_default();
        let settings = &self.shared.settings;
        let retries = ExponentialBuilder::default()
            .with_min_delay(settings.handler_retry_delay)
            .with_max_times(settings.handler_retries);
        let handler = &self.handler;
        let outcome = (|| handler.handle(message.clone()))
            .retry(retries)
            .when(|error| matches!(error, HandlerError::Retry(_)))
            .notify(|error, delay| debug!(queue = %self.queue, %message_id, %error, ?delay, "handler failed; retrying"))
            .await;
        let acked = match outcome {
            Ok(()) => self.ack().await,
            Err(reason) => {
                let requeue = matches!(reason, HandlerError::Requeue(_));
                if requeue {
                    info!(queue = %self.queue, %message_id, %reason, "requeueing message");
                } else {
                    warn!(queue = %self.queue, %message_id, %reason, "dead-lettering message");
                }
                match &self.dead_letter_queue {
                    Some(dlq) if !requeue => self.dead_letter_to(dlq, &message).await,
                    _ => self.nack(requeue).await,
                }
            }
        };
        if !matches!(acked, Ok(Ok(true))) {
            debug!(queue = %self.queue, %message_id, channel = self.channel.id(), "ack not delivered; the broker will redeliver the message");
        }
    }
}

impl Delivered {
    /// Publishes the message to `dlq` (confirmed, as any publish), then acks it; if the
    /// publish fails, gives it back to the queue instead, so that it is never lost.
    async fn dead_letter_to(&self, dlq: &QueueSpec, message: &IncomingMessage) -> Acked {
        let copy = OutgoingMessage {
            kind: message.kind.clone().unwrap_or_default(),
            message_id: message.message_id.clone().unwrap_or_default(),
            body: message.body.clone(),
            trace_parent: None,
        };
        let target = Target {
            exchange: "",
            routing_key: &dlq.name,
        };
        let published = publish::publish(&self.shared, target, &copy, |session| async move {
            session
                .ensure_declared(Declared::Queue, &dlq.name, |channel| async move {
                    declare::queue_of_type(&channel, &dlq.name, dlq.queue_type).await
                })
                .await
        })
        .await;
        match published {
            Ok(()) => self.ack().await,
            Err(error) => {
                warn!(queue = %self.queue, dlq = %dlq.name, %error, "cannot dead-letter the message; giving it back to the queue");
                self.nack(true).await
            }
        }
    }

    async fn ack(&self) -> Acked {
        timeout(
            ACK_TIMEOUT,
            self.delivery.acker.ack(BasicAckOptions::default()),
        )
        .await
    }

    /// Rejects the delivery: back to the queue if `requeue`, else to its dead-letter exchange.
    async fn nack(&self, requeue: bool) -> Acked {
        let options = BasicNackOptions {
            requeue,
            ..BasicNackOptions::default()
        };
        timeout(ACK_TIMEOUT, self.delivery.acker.nack(options)).await
    }
}

fn incoming(delivery: &Delivery) -> IncomingMessage {
    let properties = &delivery.properties;
    IncomingMessage {
        body: delivery.data.clone().into(),
        message_id: properties.message_id().as_ref().map(ToString::to_string),
        kind: properties.kind().as_ref().map(ToString::to_string),
        app_id: properties.app_id().as_ref().map(ToString::to_string),
        timestamp: *properties.timestamp(),
        routing_key: delivery.routing_key.to_string(),
        redelivered: delivery.redelivered,
    }
}
