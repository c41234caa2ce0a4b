//! [`Relay`]: publishes the outbox's entries and settles them.
//!
//! Two sources feed it: the entries the [`OutboxWriter`](super::OutboxWriter) just committed,
//! leased to this replica (the normal path: published the moment they are durable), and the
//! entries that fell due (their lease passed, or their publish failed and released them:
//! another replica died, the broker was away), which it claims from the table. At most
//! `max_in_flight` publishes are under way; the rest waits in the database, not in memory.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::messaging::{Messaging, OutgoingMessage, QueueSpec};
use common::notification::MESSAGE_TYPE;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::writer::Settler;
use super::{OutboxDb, OutboxEntry, metric};

/// Entries claimed at a time.
const CLAIM_BATCH: u32 = 256;
/// The first and the longest wait before claiming again after publishes failed.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// How often the depth and age gauges are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

/// Publishes what the outbox holds; see the [module docs](self).
pub struct Relay {
    pub messaging: Arc<dyn Messaging>,
    pub db: Arc<OutboxDb>,
    pub settler: Settler,
    pub queue: QueueSpec,
    /// This replica's name in the `owner` column.
    pub owner: Arc<str>,
    /// How long a claimed entry stays this replica's.
    pub lease: Duration,
    pub publish_timeout: Duration,
    pub max_in_flight: usize,
    /// Entries just committed, leased to this replica.
    pub fresh: mpsc::Receiver<Vec<OutboxEntry>>,
    /// Woken when entries fell due (written due, or released).
    pub due: Arc<Notify>,
}

impl Relay {
    /// Runs until `stop` is cancelled, then takes up to `grace` to publish what was handed to
    /// it and finish the publishes under way, and releases what this replica still holds, so
    /// that any relay takes it at once.
    pub async fn run(mut self, stop: CancellationToken, grace: Duration) {
        let permits = Arc::new(Semaphore::new(self.max_in_flight.max(1)));
        let tracker = TaskTracker::new();
        let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel::<bool>();
        let mut status = self.messaging.status();
        let mut retry = RETRY_MIN;
        // What a previous run left is due already, or falls due within a lease.
        let mut claim_at = Instant::now();
        let mut gauges = tokio::time::interval(GAUGES_EVERY);
        loop {
            let connected = status.borrow().is_connected();
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                batch = self.fresh.recv() => {
                    let Some(batch) = batch else { break };
                    if connected {
                        let handed = Some(Instant::now());
                        self.publish(&permits, &tracker, batch, handed, &outcomes_tx).await;
                    } else {
                        let ids = batch.into_iter().map(|e| e.message_id).collect();
                        self.settler.settle(Vec::new(), ids).await;
                    }
                }
                Some(succeeded) = outcomes.recv() => {
                    if succeeded {
                        retry = RETRY_MIN;
                    } else {
                        claim_at = Instant::now() + retry;
                        retry = (retry * 2).min(RETRY_MAX);
                    }
                }
                () = self.due.notified() => claim_at = claim_at.min(Instant::now() + retry),
                changed = status.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    if status.borrow().is_connected() {
                        claim_at = Instant::now();
                    }
                }
                () = tokio::time::sleep_until(claim_at), if connected => {
                    claim_at = self.claim(&permits, &tracker, &outcomes_tx).await;
                }
                _ = gauges.tick() => self.refresh_gauges().await,
            }
        }
        // What was committed and handed over before the stop is published too, and the
        // publishes under way finish, within `grace`.
        self.fresh.close();
        let connected = status.borrow().is_connected();
        let finish = async {
            while let Some(batch) = self.fresh.recv().await {
                if connected {
                    let handed = Some(Instant::now());
                    self.publish(&permits, &tracker, batch, handed, &outcomes_tx)
                        .await;
                }
            }
            tracker.close();
            tracker.wait().await;
        };
        if tokio::time::timeout(grace, finish).await.is_err() {
            warn!(
                ?grace,
                "publishes still under way at shutdown; their entries stay in the outbox"
            );
        }
        match self.db.release_owned(&self.owner).await {
            Ok(0) => {}
            Ok(released) => info!(released, "outbox entries left for the next relay"),
            Err(error) => {
                warn!(error = %error.with_causes(), "cannot release this replica's outbox entries; their leases pass in time")
            }
        }
    }

    /// Claims and publishes due entries while there are some and room for them; returns when
    /// to look again.
    async fn claim(
        &self,
        permits: &Arc<Semaphore>,
        tracker: &TaskTracker,
        outcomes: &mpsc::UnboundedSender<bool>,
    ) -> Instant {
        let lease = TimeDelta::from_std(self.lease).unwrap_or(TimeDelta::MAX);
        loop {
            let room = permits.available_permits().min(CLAIM_BATCH as usize);
            if room == 0 {
                return Instant::now() + RETRY_MIN;
            }
            let now = Utc::now();
            let until = now.checked_add_signed(lease).unwrap_or(now);
            let limit = u32::try_from(room).unwrap_or(CLAIM_BATCH);
            let claimed = match self.db.claim(&self.owner, limit, now, until).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    warn!(error = %error.with_causes(), "cannot claim due outbox entries; trying again");
                    return Instant::now() + RETRY_MAX;
                }
            };
            if claimed.is_empty() {
                return self.next_due().await;
            }
            debug!(count = claimed.len(), "claimed due outbox entries");
            self.publish(permits, tracker, claimed, None, outcomes)
                .await;
        }
    }

    /// When the next leased entry falls due, at most a lease from now.
    async fn next_due(&self) -> Instant {
        let latest = Instant::now() + self.lease;
        match self.db.next_due().await {
            Ok(Some(due)) => {
                let wait = (due - Utc::now()).to_std().unwrap_or_default();
                (Instant::now() + wait.max(RETRY_MIN)).min(latest)
            }
            Ok(None) => latest,
            Err(error) => {
                warn!(error = %error.with_causes(), "cannot read when the next outbox entry falls due");
                Instant::now() + RETRY_MAX
            }
        }
    }

    /// Publishes `batch` in chunks of at most `max_in_flight`, each from a task of its own
    /// once it has permits for all its entries. A batch the writer `handed` over as it
    /// committed it times its confirms (claimed ones waited for other reasons).
    async fn publish(
        &self,
        permits: &Arc<Semaphore>,
        tracker: &TaskTracker,
        mut batch: Vec<OutboxEntry>,
        handed: Option<Instant>,
        outcomes: &mpsc::UnboundedSender<bool>,
    ) {
        let chunk = self.max_in_flight.max(1);
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(chunk));
            let n = u32::try_from(batch.len()).unwrap_or(u32::MAX);
            // The semaphore is never closed; were it, the entries would stay leased, and
            // their lease pass.
            let Ok(permit) = Arc::clone(permits).acquire_many_owned(n).await else {
                return;
            };
            self.spawn_publish(tracker, permit, batch, handed, outcomes.clone());
            batch = rest;
        }
    }

    /// Publishes `batch` from a task of its own (the confirms outstanding together), then
    /// settles it and reports whether every publish succeeded.
    fn spawn_publish(
        &self,
        tracker: &TaskTracker,
        permit: OwnedSemaphorePermit,
        batch: Vec<OutboxEntry>,
        handed: Option<Instant>,
        outcomes: mpsc::UnboundedSender<bool>,
    ) {
        let messaging = Arc::clone(&self.messaging);
        let settler = self.settler.clone();
        let queue = self.queue.clone();
        let limit = self.publish_timeout;
        tracker.spawn(async move {
            let _permit = permit;
            let mut in_flight: FuturesUnordered<_> = batch
                .into_iter()
                .map(|entry| {
                    let message = OutgoingMessage {
                        kind: MESSAGE_TYPE.to_owned(),
                        message_id: entry.message_id.clone(),
                        body: entry.body.into_bytes().into(),
                        trace_parent: entry.trace_parent,
                    };
                    let publish = messaging.publish_on_queue(&queue, message);
                    async move {
                        let outcome = tokio::time::timeout(limit, publish).await;
                        (entry.message_id, outcome)
                    }
                })
                .collect();
            let (mut confirmed, mut failed) = (Vec::new(), Vec::new());
            while let Some((message_id, outcome)) = in_flight.next().await {
                match outcome {
                    Ok(Ok(())) => {
                        if let Some(handed) = handed {
                            metrics::histogram!(metric::COMMIT_TO_CONFIRM)
                                .record(handed.elapsed().as_secs_f64());
                        }
                        confirmed.push(message_id);
                    }
                    Ok(Err(error)) => {
                        debug!(%error, message_id, "publish failed; the entry stays in the outbox");
                        failed.push(message_id);
                    }
                    Err(_) => {
                        debug!(
                            message_id,
                            ?limit,
                            "no confirm in time; the entry stays in the outbox"
                        );
                        failed.push(message_id);
                    }
                }
            }
            metrics::counter!(metric::PUBLISHED).increment(confirmed.len() as u64);
            metrics::counter!(metric::FAILED).increment(failed.len() as u64);
            let succeeded = failed.is_empty();
            settler.settle(confirmed, failed).await;
            let _ = outcomes.send(succeeded);
        });
    }

    /// Refreshes the depth and age gauges.
    async fn refresh_gauges(&self) {
        match self.db.depth().await {
            Ok((depth, oldest)) => {
                #[allow(clippy::cast_precision_loss)] // A gauge; exact beyond 2^53 is not needed.
                metrics::gauge!(metric::OUTBOX_DEPTH).set(depth as f64);
                let age = oldest.map_or(0.0, |oldest| {
                    (Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0
                });
                metrics::gauge!(metric::OUTBOX_OLDEST_AGE).set(age);
            }
            Err(error) => debug!(error = %error.with_causes(), "cannot count the outbox"),
        }
    }
}
