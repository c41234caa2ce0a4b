//! [`Notifier`]: one bounded, tracked publish per VIP read, the outbox when it cannot be.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use common::messaging::{Messaging, OutgoingMessage, QueueSpec};
use common::notification::{MESSAGE_TYPE, VipNotification};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::batcher::OutboxBatcher;
use super::{buffer, metric};
use crate::store::{Outbox, OutboxEntry};

/// Announces VIP reads on the VIP queue; see the [module docs](super).
pub struct Notifier {
    publisher: Arc<Publisher>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
}

/// What the publishing tasks share.
struct Publisher {
    messaging: Arc<dyn Messaging>,
    outbox: Arc<dyn Outbox>,
    batcher: Arc<OutboxBatcher>,
    queue: QueueSpec,
    publish_timeout: Duration,
    /// Ends the publishes still under way when shutdown has waited long enough, so no task
    /// outlives the service holding its store.
    abandon: CancellationToken,
    /// Notifications whose publish is under way, by message id: what shutdown persists if
    /// their tasks do not finish in time.
    in_flight: Mutex<HashMap<String, OutboxEntry>>,
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
        let tracker = TaskTracker::new();
        let publisher = Publisher {
            messaging,
            batcher: Arc::new(OutboxBatcher::new(Arc::clone(&outbox), tracker.clone())),
            outbox,
            queue,
            publish_timeout,
            abandon: CancellationToken::new(),
            in_flight: Mutex::default(),
        };
        Self {
            publisher: Arc::new(publisher),
            permits: Arc::new(Semaphore::new(max_in_flight)),
            tracker,
        }
    }

    /// Signalled after every outbox write; for the [`Relay`](super::Relay).
    pub fn outbox_written(&self) -> Arc<Notify> {
        self.publisher.batcher.written()
    }

    /// Announces that `account_id` was read just now, without waiting for the broker. The
    /// message id is fixed here, so every later attempt (from the outbox too) carries it.
    pub fn notify(&self, account_id: &str) {
        let message = match OutgoingMessage::json(MESSAGE_TYPE, &VipNotification::now(account_id)) {
            Ok(message) => message,
            Err(error) => {
                // Two strings and a timestamp always serialize; only a bug gets here.
                tracing::error!(%error, account_id, "cannot encode a VIP notification");
                return;
            }
        };
        let entry = OutboxEntry {
            message_id: message.message_id.clone(),
            body: message.body.to_vec(),
        };
        let publisher = Arc::clone(&self.publisher);
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => {
                // Registered before the task runs, so shutdown cannot miss it.
                publisher
                    .in_flight()
                    .insert(entry.message_id.clone(), entry.clone());
                self.tracker
                    .spawn(publisher.publish(permit, message, entry));
            }
            Err(_) => {
                // Counted by the buffered metric; a log line each would flood under load.
                tracing::debug!(account_id, "too many publishes under way: to the outbox");
                publisher.batcher.keep(entry);
            }
        }
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
        // The abandoned tasks end at once, leaving their notifications in `in_flight`; the
        // batcher's writer finishes what it holds.
        self.publisher.abandon.cancel();
        self.tracker.wait().await;
        let mut pending = self.publisher.batcher.take_unwritten();
        pending.extend(self.publisher.in_flight().values().cloned());
        let count = pending.len();
        tracing::warn!(
            count,
            ?grace,
            "publishes still under way at shutdown: to the outbox"
        );
        buffer(&self.publisher.outbox, pending).await;
        count
    }
}

impl Publisher {
    /// Publishes `message`, or hands `entry` (the same notification) to the outbox if the
    /// broker fails or is too slow.
    async fn publish(
        self: Arc<Self>,
        _permit: OwnedSemaphorePermit,
        message: OutgoingMessage,
        entry: OutboxEntry,
    ) {
        let limit = self.publish_timeout;
        let publish = self.messaging.publish_on_queue(&self.queue, message);
        let outcome = tokio::select! {
            () = self.abandon.cancelled() => return,
            outcome = tokio::time::timeout(limit, publish) => outcome,
        };
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_elapsed) => Some(format!("no confirm within {limit:?}")),
        };
        let message_id = entry.message_id.clone();
        if let Some(reason) = failure {
            metrics::counter!(metric::FAILED).increment(1);
            tracing::debug!(reason, message_id, "publish failed: to the outbox");
            self.batcher.keep(entry);
        } else {
            metrics::counter!(metric::PUBLISHED).increment(1);
        }
        self.in_flight().remove(&message_id);
    }

    fn in_flight(&self) -> MutexGuard<'_, HashMap<String, OutboxEntry>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use common::messaging::{MockMessaging, QueueType};

    use super::*;
    use crate::store::MockOutbox;

    #[tokio::test]
    async fn past_the_bound_notifications_go_straight_to_the_outbox() {
        let mut messaging = MockMessaging::new();
        messaging.expect_publish_on_queue().never();
        let mut outbox = MockOutbox::new();
        outbox
            .expect_append()
            .returning(|entries| Ok(entries.len()));
        outbox.expect_depth().returning(|| Ok(1));
        // No permits at all: every notification is past the bound.
        let notifier = Notifier::new(
            Arc::new(messaging),
            Arc::new(outbox),
            QueueSpec::work_queue("q", QueueType::Classic),
            0,
            Duration::from_secs(1),
        );
        let written = notifier.outbox_written();

        notifier.notify("10000");
        notifier.notify("10000");
        notifier.flushed().await;

        // The relay is told (a stored wake-up, so this returns at once).
        written.notified().await;
    }
}
