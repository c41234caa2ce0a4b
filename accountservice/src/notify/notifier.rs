//! [`Notifier`]: one bounded, tracked publish per VIP read, the outbox when it cannot be.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use common::messaging::{Messaging, OutgoingMessage, QueueSpec};
use common::notification::{MESSAGE_TYPE, VipNotification};
use tokio::sync::{Notify, Semaphore};
use tokio_util::task::TaskTracker;

use super::{buffer, metric};
use crate::store::{Outbox, OutboxEntry};

/// Announces VIP reads on the VIP queue; see the [module docs](super).
pub struct Notifier {
    messaging: Arc<dyn Messaging>,
    outbox: Arc<dyn Outbox>,
    queue: QueueSpec,
    publish_timeout: Duration,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    /// Notifications whose publish is under way, by message id: what shutdown persists if
    /// their tasks do not finish in time.
    in_flight: Arc<Mutex<HashMap<String, OutboxEntry>>>,
    /// Woken whenever something was written to the outbox, so the relay looks at it.
    outbox_written: Arc<Notify>,
}

impl Notifier {
    /// A notifier publishing on `queue`, at most `max_in_flight` at once.
    pub fn new(
        messaging: Arc<dyn Messaging>,
        outbox: Arc<dyn Outbox>,
        queue: QueueSpec,
        max_in_flight: usize,
        publish_timeout: Duration,
    ) -> Self {
        Self {
            messaging,
            outbox,
            queue,
            publish_timeout,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            tracker: TaskTracker::new(),
            in_flight: Arc::default(),
            outbox_written: Arc::default(),
        }
    }

    /// Signalled after every outbox write; for the [`Relay`](super::Relay).
    pub fn outbox_written(&self) -> Arc<Notify> {
        Arc::clone(&self.outbox_written)
    }

    /// Announces that `account_id` was read just now, without waiting for the broker.
    pub fn notify(&self, account_id: &str) {
        let notification = VipNotification::now(account_id);
        let message = match OutgoingMessage::json(MESSAGE_TYPE, &notification) {
            Ok(message) => message.with_message_id(uuid::Uuid::new_v4().to_string()),
            Err(error) => {
                // Two strings and a timestamp always serialize; this is only reachable by a bug.
                tracing::error!(%error, account_id, "cannot encode a VIP notification");
                return;
            }
        };
        let entry = OutboxEntry {
            message_id: message.message_id.clone(),
            body: message.body.to_vec(),
        };
        let outbox = Arc::clone(&self.outbox);
        let written = Arc::clone(&self.outbox_written);
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            tracing::warn!(account_id, "too many publishes under way: to the outbox");
            self.tracker.spawn(async move {
                buffer(&outbox, vec![entry]).await;
                written.notify_one();
            });
            return;
        };
        self.lock_in_flight()
            .insert(entry.message_id.clone(), entry.clone());
        let (messaging, queue, limit) = (
            Arc::clone(&self.messaging),
            self.queue.clone(),
            self.publish_timeout,
        );
        let in_flight = Arc::clone(&self.in_flight);
        self.tracker.spawn(async move {
            let _permit = permit;
            let failure = match tokio::time::timeout(
                limit,
                messaging.publish_on_queue(&queue, message),
            )
            .await
            {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(_elapsed) => Some(format!("no confirm within {limit:?}")),
            };
            if let Some(reason) = failure {
                metrics::counter!(metric::FAILED).increment(1);
                tracing::warn!(
                    reason,
                    message_id = entry.message_id,
                    "publish failed: to the outbox"
                );
                buffer(&outbox, vec![entry.clone()]).await;
                written.notify_one();
            } else {
                metrics::counter!(metric::PUBLISHED).increment(1);
            }
            in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&entry.message_id);
        });
    }

    /// Waits until every notification handed over so far is published or in the outbox.
    /// Afterwards the notifier accepts work again.
    pub async fn flushed(&self) {
        self.tracker.close();
        self.tracker.wait().await;
        self.tracker.reopen();
    }

    /// For shutdown: waits up to `grace` for in-flight publishes, then persists the
    /// notifications still unconfirmed. Returns how many it had to persist.
    pub async fn shut_down(&self, grace: Duration) -> usize {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let pending: Vec<OutboxEntry> = self.lock_in_flight().values().cloned().collect();
        let count = pending.len();
        tracing::warn!(
            count,
            ?grace,
            "publishes still under way at shutdown: to the outbox"
        );
        buffer(&self.outbox, pending).await;
        count
    }

    fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, OutboxEntry>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
