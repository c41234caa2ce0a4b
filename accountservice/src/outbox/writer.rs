//! [`OutboxWriter`]: group commit of outbox appends and settlements.
//!
//! Appends (one per VIP read, the response waiting for it) queue on a channel. The writer
//! takes every request waiting, up to a maximum, and applies them in one transaction: one
//! commit, one fsync for many reads. The same transaction removes the entries the broker
//! confirmed and releases those whose publish failed, so settling costs no commit of its own.
//! Once committed, the new entries go to the [`Relay`](super::Relay) at once, leased to this
//! replica; if the relay has no room for them they are written due, for it to claim later.
//!
//! When the database refuses a write (disk full, I/O error, away) the appends waiting fail at
//! once (the reads answer 503) and `/health` says why. The writer then probes the database
//! every [`PROBE_EVERY`] until it takes writes again, so it recovers with nobody writing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use common::database::DatabaseError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::db::{Changes, OutboxDb};
use super::{OutboxEntry, metric};

/// The most appends in one transaction.
const MAX_BATCH: usize = 1024;
/// How often a refusing database is probed, and settlements that failed are tried again.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Settlements wait for a commit of their own until this many are pending or the oldest is
/// this old (appends keep coming under load: a commit with appends alone is one statement,
/// one with settlements a transaction of up to four).
const SETTLE_BATCH: usize = 512;
const SETTLE_DELAY: Duration = Duration::from_millis(20);

/// Why an append was not made durable. Nothing of it was written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// The database refused or could not be reached; the text has the causes.
    #[error("the outbox cannot be written: {0}")]
    Unwritable(Arc<str>),
    /// The writer has stopped (the service is stopping).
    #[error("the outbox writer has stopped")]
    Stopped,
}

/// Whether the outbox takes writes: `None` while it does, else why not.
pub type OutboxDown = watch::Receiver<Option<String>>;

enum Request {
    Append {
        entry: OutboxEntry,
        reply: oneshot::Sender<Result<(), AppendError>>,
    },
    Settle {
        confirmed: Vec<String>,
        failed: Vec<String>,
    },
}

/// Hands settlements (confirmed and failed publishes) to the writer; see [`OutboxWriter`].
#[derive(Clone)]
pub struct Settler {
    requests: mpsc::Sender<Request>,
}

impl Settler {
    /// Queues `confirmed` for removal and `failed` for release in the writer's next
    /// transaction. If the writer is gone they stay leased; their lease passes in time.
    pub async fn settle(&self, confirmed: Vec<String>, failed: Vec<String>) {
        if confirmed.is_empty() && failed.is_empty() {
            return;
        }
        let _ = self
            .requests
            .send(Request::Settle { confirmed, failed })
            .await;
    }
}

/// The single writer of the outbox in this process. Share it (e.g. in an `Arc`).
pub struct OutboxWriter {
    requests: mpsc::Sender<Request>,
    down: OutboxDown,
    task: JoinHandle<()>,
}

impl OutboxWriter {
    /// Starts the writer for `db`, writing as `owner`. New entries are leased for `lease` and
    /// handed to `fresh`; when `fresh` is full they are written due and `due` is woken.
    pub fn start(
        db: Arc<OutboxDb>,
        owner: Arc<str>,
        lease: Duration,
        fresh: mpsc::Sender<Vec<OutboxEntry>>,
        due: Arc<tokio::sync::Notify>,
    ) -> Self {
        let (requests, receiver) = mpsc::channel(MAX_BATCH);
        let (down_sender, down) = watch::channel(None);
        let task = tokio::spawn(
            Loop {
                db,
                owner,
                lease: TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX),
                fresh,
                due,
                down: down_sender,
            }
            .run(receiver),
        );
        Self {
            requests,
            down,
            task,
        }
    }

    /// Appends `entry` and returns once it is committed.
    pub async fn append(&self, entry: OutboxEntry) -> Result<(), AppendError> {
        let (reply, committed) = oneshot::channel();
        self.requests
            .send(Request::Append { entry, reply })
            .await
            .map_err(|_| AppendError::Stopped)?;
        committed.await.map_err(|_| AppendError::Stopped)?
    }

    /// Where the relay settles what it published.
    pub fn settler(&self) -> Settler {
        Settler {
            requests: self.requests.clone(),
        }
    }

    /// Whether the outbox took the last write.
    pub fn down(&self) -> OutboxDown {
        self.down.clone()
    }

    /// Stops taking requests once every [`Settler`] is dropped too, applies those queued, and
    /// waits for the task to end.
    pub async fn close(self) {
        drop(self.requests);
        if self.task.await.is_err() {
            tracing::error!("the outbox writer task ended abnormally");
        }
    }
}

struct Loop {
    db: Arc<OutboxDb>,
    owner: Arc<str>,
    lease: TimeDelta,
    fresh: mpsc::Sender<Vec<OutboxEntry>>,
    due: Arc<tokio::sync::Notify>,
    down: watch::Sender<Option<String>>,
}

/// One transaction's worth of requests.
#[derive(Default)]
struct Group {
    entries: Vec<OutboxEntry>,
    replies: Vec<oneshot::Sender<Result<(), AppendError>>>,
    confirmed: Vec<String>,
    failed: Vec<String>,
    /// When the oldest pending settlement arrived.
    settling_since: Option<Instant>,
}

impl Group {
    fn add(&mut self, request: Request) {
        match request {
            Request::Append { entry, reply } => {
                self.entries.push(entry);
                self.replies.push(reply);
            }
            Request::Settle { confirmed, failed } => {
                self.confirmed.extend(confirmed);
                self.failed.extend(failed);
                self.settling_since.get_or_insert_with(Instant::now);
            }
        }
    }

    fn unsettled(&self) -> bool {
        !self.confirmed.is_empty() || !self.failed.is_empty()
    }

    /// Whether the next commit takes the settlements too.
    fn settle_now(&self) -> bool {
        self.unsettled()
            && (self.entries.is_empty()
                || self.confirmed.len() + self.failed.len() >= SETTLE_BATCH
                || self
                    .settling_since
                    .is_some_and(|since| since.elapsed() >= SETTLE_DELAY))
    }
}

impl Loop {
    /// Gather, apply, answer; until every sender is gone and what they sent is applied.
    async fn run(self, mut requests: mpsc::Receiver<Request>) {
        let mut group = Group::default();
        let mut open = true;
        loop {
            let wait = if self.down.borrow().is_some() {
                Some(PROBE_EVERY)
            } else if group.unsettled() {
                Some(SETTLE_DELAY)
            } else {
                None
            };
            if open {
                let next = match wait {
                    Some(wait) => tokio::select! {
                        next = requests.recv() => Some(next),
                        () = tokio::time::sleep(wait) => None,
                    },
                    None => Some(requests.recv().await),
                };
                match next {
                    Some(Some(request)) => group.add(request),
                    Some(None) => open = false,
                    None => {}
                }
                while group.entries.len() < MAX_BATCH {
                    match requests.try_recv() {
                        Ok(request) => group.add(request),
                        Err(_) => break,
                    }
                }
            }
            if group.entries.is_empty() && !group.unsettled() {
                if !open {
                    return;
                }
                self.probe().await;
                continue;
            }
            let applied = self.apply(&mut group).await;
            if !open && !applied {
                // Stopping and the database refuses: what is unsettled stays leased, and its
                // lease passes in time.
                return;
            }
        }
    }

    /// Applies `group`; answers its appends either way; keeps its settlements if it failed.
    /// Returns whether it was applied.
    #[tracing::instrument(name = "outbox commit", skip_all, fields(appended = group.entries.len()))]
    async fn apply(&self, group: &mut Group) -> bool {
        let now = Utc::now();
        let room = if group.entries.is_empty() {
            None
        } else {
            self.fresh.clone().try_reserve_owned().ok()
        };
        let leased_until = match &room {
            Some(_) => now.checked_add_signed(self.lease).unwrap_or(now),
            None => now,
        };
        let settling = group.settle_now();
        let none: &[String] = &[];
        let changes = Changes {
            appended: &group.entries,
            leased_until: common::database::micros(leased_until),
            confirmed: if settling { &group.confirmed } else { none },
            failed: if settling { &group.failed } else { none },
        };
        let started = Instant::now();
        let result = self.db.apply(&self.owner, &changes, now).await;
        tracing::debug!(
            appended = group.entries.len(),
            settled = changes.confirmed.len() + changes.failed.len(),
            elapsed_us = started.elapsed().as_micros(),
            ok = result.is_ok(),
            "outbox group applied"
        );
        let entries = std::mem::take(&mut group.entries);
        let replies = std::mem::take(&mut group.replies);
        match result {
            Ok(()) => {
                let released = settling && !group.failed.is_empty();
                if settling {
                    group.confirmed.clear();
                    group.failed.clear();
                    group.settling_since = None;
                }
                // Removals may go through where appends do not (they need no new space): only
                // an append, or the probe, says the outbox takes writes again.
                if !entries.is_empty() {
                    self.mark_up();
                }
                metrics::counter!(metric::BUFFERED).increment(entries.len() as u64);
                // Handed to the relay before anyone hears of them, so a relay stopping after
                // a response still finds them.
                match room {
                    Some(room) => {
                        room.send(entries);
                    }
                    None if !entries.is_empty() => self.due.notify_one(),
                    None => {}
                }
                for reply in replies {
                    let _ = reply.send(Ok(()));
                }
                if released {
                    self.due.notify_one();
                }
                true
            }
            Err(error) => {
                let cause: Arc<str> = error.with_causes().into();
                self.mark_down(&error, entries.len());
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Unwritable(cause.clone())));
                }
                false
            }
        }
    }

    /// With nothing to write: learns whether a refusing database takes writes again.
    async fn probe(&self) {
        if self.down.borrow().is_none() {
            return;
        }
        match self.db.probe(Utc::now()).await {
            Ok(()) => self.mark_up(),
            Err(error) => self.mark_down(&error, 0),
        }
    }

    fn mark_up(&self) {
        if self.down.send_replace(None).is_some() {
            info!(database = self.db.url(), "the outbox takes writes again");
        }
    }

    fn mark_down(&self, error: &DatabaseError, refused: usize) {
        let cause = error.with_causes();
        if self.down.borrow().is_none() {
            warn!(database = self.db.url(), error = %cause, refused, "the outbox cannot be written; VIP reads answer 503 until it can");
        }
        self.down.send_replace(Some(cause));
    }
}
