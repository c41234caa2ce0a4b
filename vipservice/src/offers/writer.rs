//! [`OfferWriter`]: group commit of claims and ledger entries on a dedicated thread.
//!
//! Requests queue on a channel. The writer takes every request waiting (up to a maximum),
//! runs them all in one transaction, in the order they came, and answers each caller once
//! that transaction is durable. While one group commits, the next one gathers, so the number
//! of fsyncs follows the disk's speed rather than the message rate.

use std::sync::Arc;
use std::thread::JoinHandle;

use metrics::{counter, gauge};
use tokio::sync::{mpsc, oneshot, watch};

use super::db::{Step, StepResult};
use super::{OfferDb, OfferRule, Ordered, Outcome, RecordError, Resolved};
use crate::metrics::{CLAIMS_PENDING, DUPLICATES_DROPPED, NO_OFFERS, OFFERS_MADE};
use common::notification::VipNotification as Notification;

/// The default number of notifications (claims, and the ids of ledger entries) at which a
/// group stops taking requests. A transaction holds every page it changes in memory until it
/// commits, and every caller in the group waits for it: counting requests instead let one
/// group hold up to 256 entries of 256 ids each.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// One step for the writer, and where to send what it did.
enum Request {
    Record {
        message_id: String,
        notification: Notification,
        reply: oneshot::Sender<Result<Outcome, RecordError>>,
    },
    Apply {
        entry: Ordered,
        reply: oneshot::Sender<Result<Resolved, RecordError>>,
    },
}

impl Request {
    /// The notifications this step writes: a claim's one, or each id a ledger entry names.
    fn notifications(&self) -> usize {
        match self {
            Self::Record { .. } => 1,
            Self::Apply { entry, .. } => entry.message_ids.len().max(1),
        }
    }

    fn step(&self) -> Step<'_> {
        match self {
            Self::Record {
                message_id,
                notification,
                ..
            } => Step::Record {
                message_id,
                notification,
            },
            Self::Apply { entry, .. } => Step::Apply(entry),
        }
    }

    /// Answers the caller; one that stopped waiting has dropped its receiver, harmlessly.
    fn answer(self, result: Result<StepResult, RecordError>) {
        match (self, result) {
            (Self::Record { reply, .. }, Ok(StepResult::Recorded(outcome))) => {
                let _ = reply.send(Ok(outcome));
            }
            (Self::Apply { reply, .. }, Ok(StepResult::Applied(resolved))) => {
                let _ = reply.send(Ok(resolved));
            }
            (Self::Record { reply, .. }, Err(error)) => {
                let _ = reply.send(Err(error));
            }
            (Self::Apply { reply, .. }, Err(error)) => {
                let _ = reply.send(Err(error));
            }
            // A step's result always matches its kind (see `OfferDb::commit`).
            (Self::Record { .. } | Self::Apply { .. }, Ok(_)) => {}
        }
    }
}

/// The answer to [`OfferWriter::apply`], once the entry's transaction is durable.
pub type Applying = oneshot::Receiver<Result<Resolved, RecordError>>;

/// The single writer of an [`OfferDb`]. Share it (e.g. in an `Arc`) between consumers.
#[derive(Debug)]
pub struct OfferWriter {
    requests: mpsc::Sender<Request>,
    rule: watch::Sender<OfferRule>,
    /// Claims the ledger has not ordered yet, after the last commit.
    pending: watch::Receiver<u64>,
    thread: JoinHandle<()>,
}

impl OfferWriter {
    /// Starts the writer thread for `db`, applying `rule`; a group stops taking requests once
    /// it holds `max_batch` notifications.
    pub fn start(db: Arc<OfferDb>, rule: OfferRule, max_batch: usize) -> std::io::Result<Self> {
        let max_batch = max_batch.max(1);
        let (requests, receiver) = mpsc::channel(max_batch);
        let (rule, rule_receiver) = watch::channel(rule);
        let (pending_sender, pending) = watch::channel(db.counts().map_or(0, |c| c.pending));
        let thread = std::thread::Builder::new()
            .name("offer-writer".into())
            .spawn(move || run(&db, receiver, &rule_receiver, &pending_sender, max_batch))?;
        Ok(Self {
            requests,
            rule,
            pending,
            thread,
        })
    }

    /// Claims a notification under its `message_id` and returns the outcome once it is
    /// durable. On error nothing was recorded for it. A call abandoned midway may or may not
    /// have been recorded; recording it again is safe: it then comes back claimed (to be
    /// announced again) or a duplicate.
    pub async fn record(
        &self,
        message_id: impl Into<String>,
        notification: Notification,
    ) -> Result<Outcome, RecordError> {
        let (reply, outcome) = oneshot::channel();
        let request = Request::Record {
            message_id: message_id.into(),
            notification,
            reply,
        };
        self.requests
            .send(request)
            .await
            .map_err(|_| RecordError::WriterStopped)?;
        outcome.await.map_err(|_| RecordError::WriterStopped)?
    }

    /// Queues a ledger entry behind every request queued before it; entries must come in
    /// ledger order. Returns once queued: what the entry decided arrives on the returned
    /// receiver after its commit, and is counted in the metrics either way.
    pub async fn apply(&self, entry: Ordered) -> Result<Applying, RecordError> {
        let (reply, resolved) = oneshot::channel();
        self.requests
            .send(Request::Apply { entry, reply })
            .await
            .map_err(|_| RecordError::WriterStopped)?;
        Ok(resolved)
    }

    /// Replaces the business rule; groups committed from now on apply it.
    pub fn set_rule(&self, rule: OfferRule) {
        self.rule.send_replace(rule);
    }

    /// The number of claims the ledger has not ordered yet, updated after every commit.
    pub fn pending(&self) -> watch::Receiver<u64> {
        self.pending.clone()
    }

    /// The rule currently applied.
    pub fn rule(&self) -> OfferRule {
        self.rule.borrow().clone()
    }

    /// Stops taking requests, commits those already queued, and waits for the thread to end.
    pub async fn close(self) {
        let Self {
            requests, thread, ..
        } = self;
        drop(requests);
        // Joining blocks until the last group is committed; keep that off the async threads.
        let joined = tokio::task::spawn_blocking(move || thread.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!("the offer writer thread ended abnormally");
        }
    }
}

/// The writer loop: gather a group, commit it, answer it; until every sender is gone.
fn run(
    db: &OfferDb,
    mut requests: mpsc::Receiver<Request>,
    rule: &watch::Receiver<OfferRule>,
    pending: &watch::Sender<u64>,
    max_batch: usize,
) {
    let mut group = Vec::new();
    while let Some(first) = requests.blocking_recv() {
        gather(first, &mut requests, max_batch, &mut group);
        let rule = rule.borrow().clone();
        let result = db.commit(group.iter().map(Request::step), &rule);
        match result {
            Ok(results) => {
                tracing::debug!(group = results.len(), "offer group committed");
                if let Ok(counts) = db.counts() {
                    pending.send_replace(counts.pending);
                    gauge!(CLAIMS_PENDING).set(counts.pending as f64);
                }
                for (request, result) in group.drain(..).zip(results) {
                    count(result);
                    request.answer(Ok(result));
                }
            }
            Err(error) => {
                tracing::error!(
                    error = &error as &dyn std::error::Error,
                    group = group.len(),
                    "offer group commit failed"
                );
                let error = Arc::new(error);
                for request in group.drain(..) {
                    request.answer(Err(RecordError::Store(Arc::clone(&error))));
                }
            }
        }
    }
}

/// Fills `group` with `first` and the requests already waiting, until it holds `max_batch`
/// notifications; the rest wait for the next group.
fn gather(
    first: Request,
    requests: &mut mpsc::Receiver<Request>,
    max_batch: usize,
    group: &mut Vec<Request>,
) {
    let mut notifications = first.notifications();
    group.push(first);
    while notifications < max_batch {
        match requests.try_recv() {
            Ok(request) => {
                notifications += request.notifications();
                group.push(request);
            }
            Err(_) => break,
        }
    }
}

/// Counts what a committed step did: offers are made (and duplicates found) when the ledger
/// orders the claims, and duplicates are also found when claiming.
fn count(result: StepResult) {
    match result {
        StepResult::Recorded(Outcome::Duplicate) => counter!(DUPLICATES_DROPPED).increment(1),
        StepResult::Recorded(Outcome::Claimed) => {}
        StepResult::Applied(resolved) => {
            counter!(OFFERS_MADE).increment(resolved.offers);
            counter!(NO_OFFERS).increment(resolved.no_offers);
            counter!(DUPLICATES_DROPPED).increment(resolved.lost);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ids: usize) -> Request {
        let (reply, _) = oneshot::channel();
        let entry = Ordered {
            replica: "r".into(),
            message_ids: (0..ids).map(|i| i.to_string()).collect(),
            offset: 0,
        };
        Request::Apply { entry, reply }
    }

    #[test]
    fn a_group_stops_at_max_batch_notifications_counting_each_entry_by_its_ids() {
        let (sender, mut requests) = mpsc::channel(8);
        for _ in 0..3 {
            sender.try_send(entry(100)).unwrap();
        }
        let mut group = Vec::new();
        gather(entry(100), &mut requests, 256, &mut group);
        assert_eq!(group.len(), 3, "100 + 100 + 100 reaches 256");
        assert!(requests.try_recv().is_ok(), "the fourth entry waits");
    }
}
