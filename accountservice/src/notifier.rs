//! [`VipNotifier`]: what a VIP read does besides answering; [`OutboxNotifier`] makes the
//! notification durable in the outbox before the read is answered.

use std::sync::Arc;

use async_trait::async_trait;
use common::messaging::OutgoingMessage;
use common::notification::{MESSAGE_TYPE, VipNotification};

use crate::outbox::{AppendError, OutboxEntry, OutboxWriter};

/// Announces VIP reads.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait VipNotifier: Send + Sync {
    /// Returns once the notification that `account_id` was read just now is durable; its
    /// message id is fixed here, so every publish of it carries the same one.
    async fn notify(&self, account_id: &str) -> Result<(), AppendError>;
}

/// Notifications through the outbox.
pub struct OutboxNotifier {
    pub writer: Arc<OutboxWriter>,
}

#[async_trait]
impl VipNotifier for OutboxNotifier {
    #[tracing::instrument(name = "outbox append", skip_all, fields(account_id, message_id))]
    async fn notify(&self, account_id: &str) -> Result<(), AppendError> {
        let message = OutgoingMessage::json(MESSAGE_TYPE, &VipNotification::now(account_id))
            // Two strings and a timestamp always serialize; only a bug gets here.
            .map_err(|error| AppendError::Unwritable(format!("cannot encode: {error}").into()))?;
        tracing::Span::current()
            .record("account_id", account_id)
            .record("message_id", message.message_id.as_str());
        let body = String::from_utf8_lossy(&message.body).into_owned();
        self.writer
            .append(OutboxEntry {
                message_id: message.message_id,
                body,
                trace_parent: common::telemetry::inject().remove("traceparent"),
            })
            .await
    }
}
