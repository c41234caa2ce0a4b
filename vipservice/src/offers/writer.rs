//! [`OfferWriter`]: group commit of notifications on a dedicated thread.
//!
//! Requests queue on a channel. The writer takes every request waiting (up to a maximum),
//! records them all in one transaction, and answers each caller once that transaction is
//! durable. While one group commits, the next one gathers, so the number of fsyncs follows the
//! disk's speed rather than the message rate.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, watch};

use super::{OfferDb, OfferRule, Outcome, RecordError};
use common::notification::VipNotification as Notification;

/// The default largest group committed in one transaction.
pub const DEFAULT_MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Outcome, RecordError>>;

/// One notification to record, and where to send its outcome.
struct Request {
    message_id: String,
    notification: Notification,
    reply: Reply,
}

/// The single writer of an [`OfferDb`]. Share it (e.g. in an `Arc`) between consumers.
#[derive(Debug)]
pub struct OfferWriter {
    requests: mpsc::Sender<Request>,
    rule: watch::Sender<OfferRule>,
    thread: JoinHandle<()>,
}

impl OfferWriter {
    /// Starts the writer thread for `db`, applying `rule` and committing at most `max_batch`
    /// notifications per transaction.
    pub fn start(db: Arc<OfferDb>, rule: OfferRule, max_batch: usize) -> std::io::Result<Self> {
        let max_batch = max_batch.max(1);
        let (requests, receiver) = mpsc::channel(max_batch);
        let (rule, rule_receiver) = watch::channel(rule);
        let thread = std::thread::Builder::new()
            .name("offer-writer".into())
            .spawn(move || run(&db, receiver, &rule_receiver, max_batch))?;
        Ok(Self {
            requests,
            rule,
            thread,
        })
    }

    /// Records a notification under its `message_id` and returns the outcome once it is
    /// durable. On error nothing was recorded for it. A call abandoned midway may or may not
    /// have been recorded; recording it again is safe, as it then comes back a duplicate.
    pub async fn record(
        &self,
        message_id: impl Into<String>,
        notification: Notification,
    ) -> Result<Outcome, RecordError> {
        let (reply, outcome) = oneshot::channel();
        let request = Request {
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

    /// Replaces the business rule; groups committed from now on apply it.
    pub fn set_rule(&self, rule: OfferRule) {
        self.rule.send_replace(rule);
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
    max_batch: usize,
) {
    let mut group = Vec::with_capacity(max_batch);
    while let Some(first) = requests.blocking_recv() {
        group.push(first);
        while group.len() < max_batch {
            match requests.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let rule = rule.borrow().clone();
        let items = group
            .iter()
            .map(|request| (request.message_id.as_str(), &request.notification));
        let result = db.record_batch(items, &rule);
        // A caller that stopped waiting has dropped its receiver: its send fails, harmlessly.
        match result {
            Ok(outcomes) => {
                tracing::debug!(group = outcomes.len(), "offer group committed");
                for (request, outcome) in group.drain(..).zip(outcomes) {
                    let _ = request.reply.send(Ok(outcome));
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
                    let _ = request
                        .reply
                        .send(Err(RecordError::Store(Arc::clone(&error))));
                }
            }
        }
    }
}
