//! Messages going out, messages coming in, and what a handler says about one.

use std::future::Future;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A message to publish: persistent, `application/json`, with a stable id so consumers can drop
/// duplicates (at-least-once delivery means a republish after a lost confirm is possible).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The AMQP `type` property: what the body is.
    pub kind: String,
    pub message_id: String,
    pub body: Bytes,
    /// The W3C `traceparent` its `send` span continues, for a message published away from
    /// the work that made it (from an outbox); `None`: the current span's.
    pub trace_parent: Option<String>,
}

impl OutgoingMessage {
    /// A JSON message with a new `message_id`: a UUIDv7, time-ordered, so the stores that
    /// key by it (an outbox index, a consumer's idempotency table) append instead of
    /// touching pages all over their B-trees.
    pub fn json<T: Serialize + ?Sized>(
        kind: impl Into<String>,
        body: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            kind: kind.into(),
            message_id: uuid::Uuid::now_v7().to_string(),
            body: serde_json::to_vec(body)?.into(),
            trace_parent: None,
        })
    }

    /// The same message under a chosen id (e.g. one kept in an outbox across restarts).
    pub fn with_message_id(mut self, message_id: impl Into<String>) -> Self {
        self.message_id = message_id.into();
        self
    }
}

/// A delivered message, as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    pub body: Bytes,
    pub message_id: Option<String>,
    pub kind: Option<String>,
    pub app_id: Option<String>,
    /// Seconds since the epoch, as the publisher stamped it.
    pub timestamp: Option<u64>,
    pub routing_key: String,
    /// The broker delivered it before (to this or another consumer) without an ack.
    pub redelivered: bool,
}

impl IncomingMessage {
    /// A message with only a body, e.g. for handler tests.
    pub fn from_body(body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            message_id: None,
            kind: None,
            app_id: None,
            timestamp: None,
            routing_key: String::new(),
            redelivered: false,
        }
    }

    /// Decodes the JSON body; a body that does not decode is rejected (dead-lettered) at once,
    /// since retrying cannot make it decode.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HandlerError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HandlerError::Reject(format!("undecodable body: {e}")))
    }

    /// The body as text, lossy for bytes that are not UTF-8: for TRACE logs only (a body
    /// can be megabytes).
    pub fn body_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body for logs above TRACE: its first [`PREVIEW_BYTES`] bytes as text, and its length
    /// when there is more.
    pub fn body_preview(&self) -> BodyPreview<'_> {
        BodyPreview(&self.body)
    }
}

/// How much of a body [`IncomingMessage::body_preview`] shows.
pub const PREVIEW_BYTES: usize = 256;

/// See [`IncomingMessage::body_preview`].
pub struct BodyPreview<'a>(&'a [u8]);

impl std::fmt::Display for BodyPreview<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.0[..self.0.len().min(PREVIEW_BYTES)];
        f.write_str(&String::from_utf8_lossy(shown))?;
        if shown.len() < self.0.len() {
            write!(f, "… ({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// Why a handler did not process a message; this decides what happens to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (a database busy, a dependency down): retried a bounded number of
    /// times, then dead-lettered.
    #[error("transient failure: {0}")]
    Retry(String),
    /// Can never work (malformed, invalid): dead-lettered at once.
    #[error("rejected: {0}")]
    Reject(String),
    /// This instance cannot finish it (it is stopping): back to the queue at once, for
    /// another consumer or a later run, with no retry here.
    #[error("requeued: {0}")]
    Requeue(String),
}

/// Processes one delivered message. The message is acked when this returns `Ok`.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, message: IncomingMessage) -> Result<(), HandlerError>;
}

/// A handler made of an async closure.
pub struct HandlerFn<F>(pub F);

#[async_trait]
impl<F, Fut> Handler for HandlerFn<F>
where
    F: Fn(IncomingMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    async fn handle(&self, message: IncomingMessage) -> Result<(), HandlerError> {
        (self.0)(message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_body_is_previewed_with_its_length() {
        let long = IncomingMessage::from_body(vec![b'x'; 10_000]);
        let preview = long.body_preview().to_string();
        assert!(preview.starts_with(&"x".repeat(PREVIEW_BYTES)), "{preview}");
        assert!(preview.ends_with("… (10000 bytes)"), "{preview}");
        let short = IncomingMessage::from_body(b"{}".to_vec());
        assert_eq!(short.body_preview().to_string(), "{}");
    }

    #[test]
    fn json_messages_get_fresh_ids_unless_given_one() {
        let a = OutgoingMessage::json("t", &serde_json::json!({"a": 1})).expect("encodes");
        let b = OutgoingMessage::json("t", &serde_json::json!({"a": 1})).expect("encodes");
        assert_ne!(a.message_id, b.message_id);
        assert_eq!(a.body.as_ref(), br#"{"a":1}"#);
        assert_eq!(a.with_message_id("fixed").message_id, "fixed");
    }

    #[test]
    fn an_undecodable_body_is_rejected_not_retried() {
        let message = IncomingMessage::from_body(&b"{not json"[..]);
        let err = message.json::<serde_json::Value>().expect_err("garbage");
        assert!(matches!(err, HandlerError::Reject(reason) if reason.contains("undecodable")));
    }
}
