//! [`OfferWriter`]: group commit of notifications into the offers database.
//!
//! Requests queue on a channel. The writer takes every request waiting (up to a maximum),
//! records them all in one transaction, and answers each caller once it committed. While one
//! group commits, the next one gathers, so the number of commits (each an fsync) follows the
//! database's speed rather than the message rate.
//!
//! While the database is away the writer keeps its group and tries again with backoff: the
//! callers (handlers holding unacked deliveries) wait, so the consumer's prefetch window fills
//! and the broker stops delivering, and nothing is retried into the dead-letter queue. Only
//! when the service stops do the waiting callers give up, to have their messages requeued.

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use chrono::Utc;
use common::notification::VipNotification as Notification;
use common::telemetry::Link;
use metrics::counter;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::db::Incoming;
use super::{OfferDb, OfferRule, Outcome, RecordError};
use common::contract::vipservice::{DUPLICATES_DROPPED, NO_OFFERS, OFFERS_MADE};

/// The default number of notifications at which a group stops taking requests.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// The first and the longest wait between two tries while the database is away.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

struct Request {
    message_id: String,
    notification: Notification,
    /// The caller's span, linked from the commit's.
    caller: Link,
    reply: oneshot::Sender<Result<Outcome, RecordError>>,
}

/// Whether the database answered the writer's last commit: `None` while it does, else why not.
/// It decides the writer's log lines (one warning when the database goes, one line when it is
/// back), and `/health` reports it beside a ping of its own (right while nothing is written).
/// While it is `Some` the writer holds a group and keeps trying, so it clears by itself.
pub type DatabaseDown = watch::Receiver<Option<String>>;

/// The single writer of an [`OfferDb`] in this process. Share it (e.g. in an `Arc`).
#[derive(Debug)]
pub struct OfferWriter {
    requests: mpsc::Sender<Request>,
    rule: watch::Sender<OfferRule>,
    down: DatabaseDown,
    stopping: CancellationToken,
    task: JoinHandle<()>,
}

impl OfferWriter {
    /// Starts the writer task for `db`, applying `rule`; a group stops taking requests once it
    /// holds `max_batch` notifications.
    pub fn start(db: Arc<OfferDb>, rule: OfferRule, max_batch: usize) -> Self {
        let max_batch = max_batch.max(1);
        let (requests, receiver) = mpsc::channel(max_batch);
        let (rule, rule_receiver) = watch::channel(rule);
        let (down_sender, down) = watch::channel(None);
        let stopping = CancellationToken::new();
        let task = tokio::spawn(run(
            db,
            receiver,
            rule_receiver,
            down_sender,
            stopping.clone(),
            max_batch,
        ));
        Self {
            requests,
            rule,
            down,
            stopping,
            task,
        }
    }

    /// Records a notification under its `message_id` and returns the outcome once committed.
    /// On error nothing was recorded for it. A call abandoned midway may or may not have been
    /// recorded; recording it again is safe: it then comes back a duplicate.
    pub async fn record(
        &self,
        message_id: impl Into<String>,
        notification: Notification,
    ) -> Result<Outcome, RecordError> {
        let (reply, outcome) = oneshot::channel();
        let request = Request {
            message_id: message_id.into(),
            notification,
            caller: Link::to_current(),
            reply,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| RecordError::WriterStopped)?;
        outcome.await.map_err(|_| RecordError::WriterStopped)?
    }

    /// Replaces the business rule; groups committed from now on apply it.
    pub fn set_rule(&self, rule: OfferRule) {
        self.rule.send_replace(rule);
    }

    /// The rule currently applied.
    pub fn rule(&self) -> OfferRule {
        self.rule.borrow().clone()
    }

    /// Whether the database answered the last commit.
    pub fn database_down(&self) -> DatabaseDown {
        self.down.clone()
    }

    /// Stops waiting for an absent database: groups waiting for it fail with
    /// [`RecordError::Unavailable`] (their messages are requeued). Commits that work go on.
    pub fn stop_waiting(&self) {
        self.stopping.cancel();
    }

    /// Stops taking requests, commits those already queued, and waits for the task to end.
    pub async fn close(self) {
        let Self {
            requests,
            task,
            stopping,
            ..
        } = self;
        stopping.cancel();
        drop(requests);
        if task.await.is_err() {
            error!("the offer writer task ended abnormally");
        }
    }
}

/// The writer loop: gather a group, commit it, answer it; until every sender is gone.
async fn run(
    db: Arc<OfferDb>,
    mut requests: mpsc::Receiver<Request>,
    rule: watch::Receiver<OfferRule>,
    down: watch::Sender<Option<String>>,
    stopping: CancellationToken,
    max_batch: usize,
) {
    let mut group = Vec::with_capacity(max_batch);
    while let Some(first) = requests.recv().await {
        gather(first, &mut requests, max_batch, &mut group);
        let rule = rule.borrow().clone();
        match commit(&db, &group, &rule, &down, &stopping).await {
            Ok(outcomes) => answer(group.drain(..), outcomes),
            // One request the database refuses must not fail the others: each alone.
            Err(RecordError::Store(_)) if group.len() > 1 => {
                for request in group.drain(..) {
                    let alone = std::slice::from_ref(&request);
                    match commit(&db, alone, &rule, &down, &stopping).await {
                        Ok(outcomes) => answer(std::iter::once(request), outcomes),
                        Err(error) => {
                            let _ = request.reply.send(Err(error));
                        }
                    }
                }
            }
            Err(error) => {
                for request in group.drain(..) {
                    let _ = request.reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// Fills `group` with `first` and the requests already waiting, up to `max_batch`.
fn gather(
    first: Request,
    requests: &mut mpsc::Receiver<Request>,
    max_batch: usize,
    group: &mut Vec<Request>,
) {
    group.push(first);
    while group.len() < max_batch {
        match requests.try_recv() {
            Ok(request) => group.push(request),
            Err(_) => break,
        }
    }
}

/// Records `group`, trying again with backoff while the database is away and the service is
/// not stopping (the wait between tries bounds how late a stop is noticed). `down` follows
/// what it found. Its span links to each caller's: one commit serves several traces.
#[tracing::instrument(name = "offers commit", skip_all, fields(group = group.len()))]
async fn commit(
    db: &OfferDb,
    group: &[Request],
    rule: &OfferRule,
    down: &watch::Sender<Option<String>>,
    stopping: &CancellationToken,
) -> Result<Vec<Outcome>, RecordError> {
    let span = tracing::Span::current();
    for request in group {
        request.caller.add_to(&span);
    }
    let incoming: Vec<Incoming<'_>> = group
        .iter()
        .map(|request| Incoming {
            message_id: &request.message_id,
            notification: &request.notification,
        })
        .collect();
    let started = Instant::now();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(RETRY_MIN)
        .with_max_delay(RETRY_MAX)
        .with_jitter()
        .without_max_times();
    let attempts = (|| db.record(&incoming, rule, Utc::now()))
        .retry(backoff)
        // Once stopping, an absent database is an answer: the message goes back to the queue.
        .when(|error| error.is_unavailable() && !stopping.is_cancelled())
        .notify(|error, delay| {
            let cause = error.with_causes();
            if down.borrow().is_none() {
                warn!(database = db.url(), error = %cause, group = group.len(), "the offer database is away; holding the group and trying again");
            } else {
                debug!(database = db.url(), error = %cause, ?delay, "the offer database is still away");
            }
            down.send_replace(Some(cause));
        });
    let result = attempts.await;
    match result {
        Ok(outcomes) => {
            if down.send_replace(None).is_some() {
                info!(database = db.url(), "the offer database answers again");
            }
            debug!(
                group = group.len(),
                elapsed_us = started.elapsed().as_micros(),
                "offer group committed"
            );
            Ok(outcomes)
        }
        Err(error) if error.is_unavailable() => {
            let cause = error.with_causes();
            down.send_replace(Some(cause.clone()));
            Err(RecordError::Unavailable(cause))
        }
        Err(error) => {
            error!(
                error = &error as &dyn std::error::Error,
                group = group.len(),
                "the offer database refused a group"
            );
            Err(RecordError::Store(Arc::new(error)))
        }
    }
}

fn answer(requests: impl Iterator<Item = Request>, outcomes: Vec<Outcome>) {
    for (request, outcome) in requests.zip(outcomes) {
        match outcome {
            Outcome::Offered => counter!(OFFERS_MADE).increment(1),
            Outcome::NotOffered => counter!(NO_OFFERS).increment(1),
            Outcome::Duplicate => counter!(DUPLICATES_DROPPED).increment(1),
        }
        let _ = request.reply.send(Ok(outcome));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(i: usize) -> Request {
        let (reply, _) = oneshot::channel();
        Request {
            message_id: i.to_string(),
            notification: Notification::now("10000"),
            caller: Link::to_current(),
            reply,
        }
    }

    #[test]
    fn a_group_stops_at_max_batch() {
        let (sender, mut requests) = mpsc::channel(8);
        for i in 0..4 {
            sender.try_send(request(i)).unwrap();
        }
        let mut group = Vec::new();
        gather(request(9), &mut requests, 3, &mut group);
        assert_eq!(group.len(), 3);
        assert!(
            requests.try_recv().is_ok(),
            "the rest waits for the next group"
        );
    }
}
