//! Turning topology descriptions into broker declarations, and broker refusals into errors
//! that name what is wrong.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{Channel, ErrorKind, ExchangeKind as LapinExchangeKind};

use crate::messaging::{Compat, ExchangeKind, ExchangeSpec, MessagingError, QueueSpec, QueueType};

/// The RabbitMQ 4 deprecated feature a non-durable, non-exclusive queue uses.
pub(crate) const TRANSIENT_QUEUES_FEATURE: &str = "transient_nonexcl_queues";

/// Declares a durable exchange.
pub(super) async fn exchange(channel: &Channel, spec: &ExchangeSpec) -> Result<(), MessagingError> {
    declare_exchange(channel, &spec.name, spec.kind).await
}

/// Declares a work queue with its dead-letter exchange and queue:
/// `<q>` → (rejected, expired, over the delivery limit) → `<q>.dlx` → `<q>.dlq`. With
/// [`Compat::GoP9`], `<q>` exactly as the Go original declares it (non-durable, classic, no
/// arguments: any other declaration of it fails on one side), and `<q>.dlq` for the consumer
/// to dead-letter into.
pub(super) async fn work_queue(
    channel: &Channel,
    spec: &QueueSpec,
    delivery_limit: u32,
) -> Result<(), MessagingError> {
    if spec.compat == Compat::GoP9 {
        declare_queue(
            channel,
            &spec.name,
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|error| {
            error.with_hint(
                "`amqp.compat: go-p9` declares it as the Go original does (not durable, no \
                     arguments): drain and delete the other one first (README, migration)",
            )
        })?;
        return queue_of_type(channel, &spec.dead_letter_queue(), spec.queue_type).await;
    }
    let dlx = spec.dead_letter_exchange();
    let dlq = spec.dead_letter_queue();
    let mut args = queue_type_args(spec.queue_type);
    args.insert("x-dead-letter-exchange".into(), long_string(&dlx));
    args.insert("x-dead-letter-routing-key".into(), long_string(&spec.name));
    if spec.queue_type == QueueType::Quorum {
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(delivery_limit)),
        );
    }
    // The queue first, so a mismatch names it rather than its dead-letter queue.
    declare_queue(channel, &spec.name, durable(), args)
        .await
        .map_err(|error| {
            error.with_hint(
                "if the Go original's services declared it, set `amqp.compat: go-p9` \
                 (the `migration` profile) to share it with them",
            )
        })?;
    declare_exchange(channel, &dlx, ExchangeKind::Direct).await?;
    declare_queue(channel, &dlq, durable(), queue_type_args(spec.queue_type)).await?;
    bind(channel, &dlq, &dlx, &spec.name).await
}

/// Declares a plain durable queue of `queue_type`.
pub(super) async fn queue_of_type(
    channel: &Channel,
    name: &str,
    queue_type: QueueType,
) -> Result<(), MessagingError> {
    declare_queue(channel, name, durable(), queue_type_args(queue_type)).await
}

/// Declares this instance's own queue on `exchange`: exclusive and auto-delete, so it goes
/// away with the connection and nothing piles up across restarts.
pub(super) async fn instance_queue(
    channel: &Channel,
    exchange: &ExchangeSpec,
    queue: &str,
    binding_key: &str,
) -> Result<(), MessagingError> {
    declare_exchange(channel, &exchange.name, exchange.kind).await?;
    let options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..QueueDeclareOptions::default()
    };
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        long_string(QueueType::Classic.as_str()),
    );
    declare_queue(channel, queue, options, args).await?;
    bind(channel, queue, &exchange.name, binding_key).await
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

fn queue_type_args(queue_type: QueueType) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_string(queue_type.as_str()));
    args
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
) -> Result<(), MessagingError> {
    let lapin_kind = match kind {
        ExchangeKind::Direct => LapinExchangeKind::Direct,
        ExchangeKind::Fanout => LapinExchangeKind::Fanout,
        ExchangeKind::Topic => LapinExchangeKind::Topic,
        ExchangeKind::Headers => LapinExchangeKind::Headers,
    };
    let options = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            ShortString::from(name),
            lapin_kind,
            options,
            FieldTable::default(),
        )
        .await
        .map_err(|e| {
            let operation = format!("declaring exchange {name:?}");
            refusal("exchange", name, &operation, "configure", e)
        })
}

async fn declare_queue(
    channel: &Channel,
    name: &str,
    options: QueueDeclareOptions,
    args: FieldTable,
) -> Result<(), MessagingError> {
    channel
        .queue_declare(ShortString::from(name), options, args)
        .await
        .map(drop)
        .map_err(|e| {
            let operation = format!("declaring queue {name:?}");
            refusal("queue", name, &operation, "configure", e)
        })
}

async fn bind(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> Result<(), MessagingError> {
    channel
        .queue_bind(
            ShortString::from(queue),
            ShortString::from(exchange),
            ShortString::from(key),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| {
            let operation = format!("binding queue {queue:?} to {exchange:?} with {key:?}");
            refusal(
                "queue",
                queue,
                &operation,
                "write (queue) and read (exchange)",
                e,
            )
        })
}

/// PRECONDITION_FAILED means the thing exists with other properties: say which and how. A
/// refused deprecated feature (RabbitMQ 4: 541, naming the feature) says which setting permits it.
fn refusal(
    kind: &'static str,
    name: &str,
    operation: &str,
    permission: &'static str,
    error: lapin::Error,
) -> MessagingError {
    if let ErrorKind::ProtocolError(amqp) = error.kind() {
        let detail = amqp.get_message().to_string();
        if matches!(
            amqp.kind(),
            AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
        ) {
            return MessagingError::TopologyMismatch {
                kind,
                name: name.to_owned(),
                detail,
                hint: String::new(),
            };
        }
        if detail.contains(TRANSIENT_QUEUES_FEATURE) {
            return MessagingError::TransientQueueRefused {
                queue: name.to_owned(),
                detail,
            };
        }
    }
    MessagingError::needing(permission, operation, error)
}
