//! Confirmed publishing: persistent JSON messages with ids, `mandatory` so an unroutable
//! message is an error, and a republish on the next connection when the confirm was lost with
//! the old one (consumers drop the duplicates by `message_id`).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lapin::Confirmation;
use lapin::options::BasicPublishOptions;
use lapin::protocol::AMQPErrorKind;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, ErrorKind};
use tokio::time::{Instant, sleep, timeout};
use tracing::Instrument;

use super::Shared;
use super::connect::reconnect_delays;
use super::session::Session;
use crate::messaging::{MessagingError, OutgoingMessage};
use crate::telemetry;

/// Where a message goes: `exchange` "" is the default exchange, routing straight to a queue.
pub(super) struct Target<'a> {
    pub(super) exchange: &'a str,
    pub(super) routing_key: &'a str,
}

impl Target<'_> {
    fn describe(&self) -> String {
        if self.exchange.is_empty() {
            format!("queue {:?}", self.routing_key)
        } else {
            format!("exchange {:?} (key {:?})", self.exchange, self.routing_key)
        }
    }
}

/// How one attempt ended.
enum Attempt {
    Confirmed,
    /// The channel or connection went away: worth trying again on a healthy one.
    Interrupted(MessagingError),
    /// The broker refused to store it on `channel`: a quorum queue does while it elects a
    /// leader, and RabbitMQ 3.10 goes on refusing everything a channel publishes to the queue
    /// if its first publish came during the election. Worth trying again on a new channel.
    Nacked {
        error: MessagingError,
        channel: lapin::Channel,
    },
    Failed(MessagingError),
}

/// Channel errors tolerated on a connection that stays up before the publish fails.
const CHANNEL_RETRIES: u32 = 3;
/// Lost connections one publish rides out before it fails (a flapping broker).
const CONNECTION_RETRIES: u32 = 5;

impl Target<'_> {
    /// The destination as OpenTelemetry's messaging conventions name it: the exchange, or the
    /// queue for the default exchange.
    fn destination(&self) -> &str {
        if self.exchange.is_empty() {
            self.routing_key
        } else {
            self.exchange
        }
    }
}

/// Publishes and waits for the confirm, riding out an outage of up to `outage_wait`, inside a
/// PRODUCER span `send <destination>`.
pub(super) async fn publish<F, Fut>(
    shared: &Shared,
    target: Target<'_>,
    message: &OutgoingMessage,
    declare: F,
) -> Result<(), MessagingError>
where
    F: Fn(Arc<Session>) -> Fut,
    Fut: Future<Output = Result<(), MessagingError>>,
{
    let destination = target.destination();
    let span = tracing::info_span!(
        "send",
        messaging.destination.name = %destination,
        messaging.rabbitmq.destination.routing_key = %target.routing_key,
        messaging.message.id = %message.message_id,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        messaging.system = tracing::field::Empty,
        messaging.operation.type = tracing::field::Empty,
    );
    telemetry::describe(
        &span,
        || format!("send {destination}"),
        "producer",
        &[
            ("messaging.system", "rabbitmq"),
            ("messaging.operation.type", "send"),
        ],
    );
    let carried = telemetry::Carried {
        traceparent: message.trace_parent.as_deref(),
        tracestate: None,
    };
    telemetry::set_parent(&span, carried, false);
    confirmed(shared, target, message, declare)
        .instrument(span)
        .await
}

async fn confirmed<F, Fut>(
    shared: &Shared,
    target: Target<'_>,
    message: &OutgoingMessage,
    declare: F,
) -> Result<(), MessagingError>
where
    F: Fn(Arc<Session>) -> Fut,
    Fut: Future<Output = Result<(), MessagingError>>,
{
    let properties = properties(&shared.settings.app_id, message);
    let mut deadline = Instant::now() + shared.settings.outage_wait;
    let (mut channel_errors, mut lost_connections) = (0, 0);
    // Between publishes the broker nacked: short at first (an election takes a moment), capped.
    let mut nack_delays = reconnect_delays(&shared.settings);
    loop {
        let session = shared.session_for_publish(deadline).await?;
        let outcome = match declare(session.clone()).await {
            Ok(()) => attempt(shared, &session, &target, message, properties.clone()).await,
            // A refusal that closed the connection (RabbitMQ 4's deprecated features) is no
            // outage: trying again on the next connection would be refused the same way.
            Err(error) if session.is_alive() || !error.is_transient() => Attempt::Failed(error),
            Err(error) => Attempt::Interrupted(error),
        };
        match outcome {
            Attempt::Confirmed => return Ok(()),
            Attempt::Failed(error) => return Err(error),
            Attempt::Nacked { error, channel } => {
                let delay = nack_delays
                    .next()
                    .unwrap_or(shared.settings.reconnect_max_delay);
                if Instant::now() + delay >= deadline {
                    return Err(error);
                }
                session.retire_publisher(&channel).await;
                sleep(delay).await;
            }
            Attempt::Interrupted(error) if session.is_alive() => {
                channel_errors += 1;
                if channel_errors > CHANNEL_RETRIES {
                    return Err(error);
                }
            }
            Attempt::Interrupted(error) => {
                lost_connections += 1;
                if lost_connections > CONNECTION_RETRIES {
                    return Err(error);
                }
                // The confirm died with the connection: publish again on the next one.
                session.lost.cancel();
                deadline = Instant::now() + shared.settings.outage_wait;
            }
        }
    }
}

async fn attempt(
    shared: &Shared,
    session: &Session,
    target: &Target<'_>,
    message: &OutgoingMessage,
    properties: BasicProperties,
) -> Attempt {
    let interrupted = |source: lapin::Error| {
        // Noticed here before the session's watcher saw it: the next attempt waits for the
        // next connection instead of failing on this one again.
        if is_connection_lost(&source) {
            session.lost.cancel();
        }
        let operation = format!("publishing to {}", target.describe());
        match MessagingError::needing("write", operation, source) {
            // Publishing again would be refused again.
            denied @ MessagingError::PermissionDenied { .. } => Attempt::Failed(denied),
            error => Attempt::Interrupted(error),
        }
    };
    let channel = match session.publisher().await {
        Ok(channel) => channel,
        Err(error) => return interrupted(error),
    };
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = match channel
        .basic_publish(
            ShortString::from(target.exchange),
            ShortString::from(target.routing_key),
            options,
            &message.body,
            properties,
        )
        .await
    {
        Ok(confirm) => confirm,
        Err(error) => return interrupted(error),
    };
    let confirm_timeout = shared.settings.confirm_timeout;
    match timeout(confirm_timeout, confirm).await {
        Err(_) => Attempt::Failed(MessagingError::ConfirmTimeout {
            target: target.describe(),
            timeout: confirm_timeout,
        }),
        Ok(Err(error)) => interrupted(error),
        Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => Attempt::Confirmed,
        Ok(Ok(Confirmation::Ack(Some(_)))) => Attempt::Failed(MessagingError::Unroutable {
            target: target.describe(),
        }),
        Ok(Ok(Confirmation::Nack(_))) => Attempt::Nacked {
            error: MessagingError::Nacked {
                target: target.describe(),
            },
            channel,
        },
    }
}

/// Whether `error` means the whole connection is gone, not just this channel.
fn is_connection_lost(error: &lapin::Error) -> bool {
    match error.kind() {
        ErrorKind::InvalidConnectionState(_) | ErrorKind::IOError(_) => true,
        ErrorKind::ProtocolError(amqp) => matches!(amqp.kind(), AMQPErrorKind::Hard(_)),
        _ => false,
    }
}

fn properties(app_id: &str, message: &OutgoingMessage) -> BasicProperties {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let trace = telemetry::inject();
    let properties = BasicProperties::default();
    let properties = if trace.is_empty() {
        properties
    } else {
        let mut headers = FieldTable::default();
        for (key, value) in trace {
            headers.insert(key.into(), AMQPValue::LongString(value.into()));
        }
        properties.with_headers(headers)
    };
    properties
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(message.message_id.as_str().into())
        .with_type(message.kind.as_str().into())
        .with_app_id(app_id.into())
        .with_timestamp(now)
}
