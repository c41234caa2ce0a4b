//! What the services publish to and consume from, described once per service.
//!
//! The lapin implementation turns these descriptions into declarations on the broker; the
//! services never declare anything themselves.

use std::fmt;

/// The AMQP exchange types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    /// The name the broker knows the type by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
            Self::Headers => "headers",
        }
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A durable exchange (Spring Cloud Bus declares `springCloudBus` as a durable topic exchange,
/// and declaring it with other properties would fail).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExchangeSpec {
    pub name: String,
    pub kind: ExchangeKind,
}

impl ExchangeSpec {
    pub fn new(name: impl Into<String>, kind: ExchangeKind) -> Self {
        Self {
            name: name.into(),
            kind,
        }
    }

    pub fn topic(name: impl Into<String>) -> Self {
        Self::new(name, ExchangeKind::Topic)
    }
}

/// The RabbitMQ queue types a work queue can have.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated, and it counts redeliveries so a message that keeps crashing its consumer is
    /// dead-lettered instead of looping forever.
    #[default]
    Quorum,
    Classic,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quorum => "quorum",
            Self::Classic => "classic",
        }
    }
}

/// Whose declaration of the work queues a service follows (the setting `amqp.compat`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize, serde::Serialize,
)]
pub enum Compat {
    /// goblog-rs's own: durable, of `amqp.queue_type`, dead-lettering through the broker.
    #[default]
    #[serde(rename = "none")]
    None,
    /// The Go original's (callistaenterprise/goblog, branch P9), so that its services and
    /// ours share `vip_queue`: a non-durable classic queue without arguments. It gives up the
    /// queue (and what it holds) surviving a broker restart, and the broker's delivery limit;
    /// poison messages are dead-lettered by the consumer itself, to `<name>.dlq`.
    #[serde(rename = "go-p9")]
    GoP9,
}

/// A work queue: durable, with its dead-letter exchange `<name>.dlx` and queue `<name>.dlq`;
/// or, with [`Compat::GoP9`], as the Go original declares it, with `<name>.dlq` beside it.
///
/// Replicas that subscribe to the same work queue share its messages round-robin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueSpec {
    pub name: String,
    pub queue_type: QueueType,
    pub compat: Compat,
}

impl QueueSpec {
    pub fn work_queue(name: impl Into<String>, queue_type: QueueType) -> Self {
        Self {
            name: name.into(),
            queue_type,
            compat: Compat::None,
        }
    }

    /// The same queue, declared as `compat` says.
    pub fn with_compat(self, compat: Compat) -> Self {
        Self { compat, ..self }
    }

    /// The exchange that receives what this queue dead-letters.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.name)
    }

    /// Where dead-lettered messages wait for a human.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dlq", self.name)
    }
}
