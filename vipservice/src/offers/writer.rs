//! [`OfferWriter`]: group commit of ledger entries on a dedicated thread.
//!
//! Entries queue on a channel, in ledger order. The writer takes the entries waiting, up to a
//! number of claims, applies them all in one transaction, in order, and answers each caller
//! once that transaction is durable. While one group commits, the next one gathers, so the number of
//! fsyncs follows the disk's speed rather than the message rate.

use std::sync::Arc;
use std::thread::JoinHandle;

use metrics::counter;
use tokio::sync::{mpsc, oneshot, watch};

use super::{OfferDb, OfferRule, Ordered, RecordError, Resolved};
use crate::metrics::{DUPLICATES_DROPPED, NO_OFFERS, OFFERS_MADE};

/// The default number of claims at which a group stops taking entries. A transaction holds
/// every page it changes in memory until it commits (a page per account offered to, at
/// worst), so this bounds the writer's memory however many deliveries wait.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// An entry for the writer, and where to send what it decided.
struct Request {
    entry: Ordered,
    reply: oneshot::Sender<Result<Resolved, RecordError>>,
}

/// The answer to [`OfferWriter::apply`], once the entry's transaction is durable.
pub type Applying = oneshot::Receiver<Result<Resolved, RecordError>>;

/// The single writer of an [`OfferDb`]. Share it (e.g. in an `Arc`) between the tasks that
/// feed it ledger entries.
#[derive(Debug)]
pub struct OfferWriter {
    requests: mpsc::Sender<Request>,
    rule: watch::Sender<OfferRule>,
    thread: JoinHandle<()>,
}

impl OfferWriter {
    /// Starts the writer thread for `db`, applying `rule`; a group stops taking entries once
    /// it holds `max_batch` claims.
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

    /// Queues a ledger entry behind every entry queued before it; entries must come in
    /// ledger order. Returns once queued: what the entry decided arrives on the returned
    /// receiver after its commit, and is counted in the metrics either way.
    pub async fn apply(&self, entry: Ordered) -> Result<Applying, RecordError> {
        let (reply, resolved) = oneshot::channel();
        self.requests
            .send(Request { entry, reply })
            .await
            .map_err(|_| RecordError::WriterStopped)?;
        Ok(resolved)
    }

    /// Replaces the business rule; groups committed from now on apply it.
    pub fn set_rule(&self, rule: OfferRule) {
        self.rule.send_replace(rule);
    }

    /// The rule currently applied.
    pub fn rule(&self) -> OfferRule {
        self.rule.borrow().clone()
    }

    /// Stops taking entries, commits those already queued, and waits for the thread to end.
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
    let mut group = Vec::new();
    while let Some(first) = requests.blocking_recv() {
        let mut claims = first.entry.claims.len();
        group.push(first);
        while claims < max_batch {
            match requests.try_recv() {
                Ok(request) => {
                    claims += request.entry.claims.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        let rule = rule.borrow().clone();
        match db.commit(group.iter().map(|r| &r.entry), &rule) {
            Ok(results) => {
                tracing::debug!(group = results.len(), "ledger entries committed");
                for (request, resolved) in group.drain(..).zip(results) {
                    count(resolved);
                    // A caller that stopped waiting has dropped its receiver, harmlessly.
                    let _ = request.reply.send(Ok(resolved));
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

/// Counts what a committed entry decided for this replica's claims.
fn count(resolved: Resolved) {
    counter!(OFFERS_MADE).increment(resolved.offers);
    counter!(NO_OFFERS).increment(resolved.no_offers);
    counter!(DUPLICATES_DROPPED).increment(resolved.duplicates);
}
