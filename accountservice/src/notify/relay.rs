//! [`Relay`]: publishes what the outbox holds, oldest first, whenever the broker is connected.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use common::messaging::{LinkStatus, Messaging, MessagingError, OutgoingMessage, QueueSpec};
use common::notification::MESSAGE_TYPE;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{metric, with_outbox};
use crate::store::{Outbox, StoreError};

/// Entries read from the outbox at a time.
const BATCH: usize = 100;

/// Drains the outbox; see the [module docs](super).
pub struct Relay {
    pub messaging: Arc<dyn Messaging>,
    pub outbox: Arc<dyn Outbox>,
    pub queue: QueueSpec,
    /// Signalled when something was written to the outbox.
    pub outbox_written: Arc<Notify>,
}

/// Why one drain stopped short.
#[derive(Debug, thiserror::Error)]
enum DrainError {
    #[error(transparent)]
    Publish(#[from] MessagingError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Relay {
    /// Runs until `stop` is cancelled: waits for the broker, drains (retrying with backoff),
    /// then sleeps until the outbox is written again. Starts with a drain, for what a previous
    /// run left.
    pub async fn run(self, stop: CancellationToken) {
        let mut status = self.messaging.status();
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(8)
            .with_jitter();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                connected = async { status.wait_for(LinkStatus::is_connected).await.is_ok() } => {
                    if !connected {
                        return;
                    }
                }
            }
            let drain = (|| self.drain())
                .retry(backoff)
                .notify(|error, delay| tracing::warn!(%error, ?delay, "outbox relay: retrying"));
            let drained = tokio::select! {
                () = stop.cancelled() => return,
                drained = drain => drained,
            };
            match drained {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "outbox relay: published"),
                // Gave up for now; start over once the broker is (still or again) connected.
                Err(error) => {
                    tracing::warn!(%error, "outbox relay: gave up for now");
                    continue;
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.outbox_written.notified() => {},
            }
        }
    }

    /// Publishes every pending entry, oldest batch first, removing each batch once confirmed
    /// (one transaction per batch, not per entry). A batch's publishes are issued in order
    /// with their confirms outstanding together: one confirm round trip per batch, not per
    /// entry. Returns how many.
    async fn drain(&self) -> Result<usize, DrainError> {
        let mut published = 0;
        loop {
            let batch = with_outbox(&self.outbox, |outbox| outbox.oldest(BATCH)).await?;
            if batch.is_empty() {
                return Ok(published);
            }
            let mut in_flight: FuturesOrdered<_> = batch
                .into_iter()
                .map(|entry| async move {
                    let message = OutgoingMessage {
                        kind: MESSAGE_TYPE.to_owned(),
                        message_id: entry.message_id,
                        body: entry.body.into(),
                    };
                    let message_id = message.message_id.clone();
                    self.messaging
                        .publish_on_queue(&self.queue, message)
                        .await
                        .map(|()| message_id)
                })
                .collect();
            let mut done = Vec::with_capacity(in_flight.len());
            let mut failure = None;
            while let Some(result) = in_flight.next().await {
                match result {
                    Ok(message_id) => {
                        metrics::counter!(metric::PUBLISHED).increment(1);
                        done.push(message_id);
                    }
                    Err(error) => {
                        failure.get_or_insert(error);
                    }
                }
            }
            published += done.len();
            // What was confirmed leaves the outbox even when another entry failed.
            with_outbox(&self.outbox, move |outbox| outbox.remove(&done)).await?;
            if let Some(error) = failure {
                return Err(error.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use common::messaging::{MockMessaging, QueueType};
    use tokio::sync::{mpsc, watch};

    use super::*;
    use crate::store::{MockOutbox, OutboxEntry};

    fn entry(id: &str) -> OutboxEntry {
        OutboxEntry {
            message_id: id.to_owned(),
            body: format!(r#"{{"accountId":"{id}"}}"#).into_bytes(),
        }
    }

    #[tokio::test]
    async fn once_connected_it_publishes_what_a_previous_run_left_in_order_with_its_ids() {
        let (status_tx, status) = watch::channel(LinkStatus::Reconnecting);
        let published = Arc::new(Mutex::new(Vec::new()));
        let mut messaging = MockMessaging::new();
        messaging.expect_status().return_once(move || status);
        let seen = Arc::clone(&published);
        messaging
            .expect_publish_on_queue()
            .times(2)
            .returning(move |queue, message| {
                assert_eq!(queue.name, "q");
                assert_eq!(message.kind, MESSAGE_TYPE);
                let mut seen = seen.lock().unwrap();
                seen.push((message.message_id, message.body.to_vec()));
                Ok(())
            });
        let mut outbox = MockOutbox::new();
        let mut left = vec![entry("b"), entry("a")];
        outbox
            .expect_oldest()
            .returning(move |_| Ok(std::mem::take(&mut left)));
        let (removed_tx, mut removed) = mpsc::unbounded_channel();
        outbox.expect_remove().returning(move |ids| {
            let _ = removed_tx.send(ids.to_vec());
            Ok(ids.len())
        });
        outbox.expect_depth().returning(|| Ok(0));
        let relay = Relay {
            messaging: Arc::new(messaging),
            outbox: Arc::new(outbox),
            queue: QueueSpec::work_queue("q", QueueType::Classic),
            outbox_written: Arc::default(),
        };
        let stop = CancellationToken::new();
        let running = tokio::spawn(relay.run(stop.clone()));

        // Nothing moves while the broker is away.
        tokio::task::yield_now().await;
        assert!(published.lock().unwrap().is_empty());
        status_tx.send_replace(LinkStatus::Connected);

        assert_eq!(removed.recv().await, Some(vec!["b".into(), "a".into()]));
        stop.cancel();
        running.await.unwrap();
        let published = published.lock().unwrap();
        assert_eq!(
            *published,
            [
                ("b".to_owned(), entry("b").body),
                ("a".to_owned(), entry("a").body)
            ]
        );
    }
}
