//! [`OutboxBatcher`]: outbox writes gathered into one transaction (one fsync) per batch.
//!
//! Under overload many notifications go to the outbox at once; writing each in a transaction
//! of its own would pile up blocking tasks (the way the Go original piled up channels). Here
//! one writer task at a time takes whatever has gathered and appends it in one go.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

use super::buffer;
use crate::store::{Outbox, OutboxEntry};

/// At most this many entries per transaction: a redb write transaction keeps its dirty pages
/// in memory until it commits, so an unbounded batch would make a burst's peak memory.
const MAX_BATCH: usize = 1024;

pub(super) struct OutboxBatcher {
    outbox: Arc<dyn Outbox>,
    pending: Mutex<Pending>,
    /// Runs the writer, so waiting for the tracker waits for the outbox writes too.
    tracker: TaskTracker,
    /// Woken after every write, so the relay looks at the outbox.
    written: Arc<Notify>,
}

#[derive(Default)]
struct Pending {
    entries: Vec<OutboxEntry>,
    /// Whether a writer task is running; it keeps going until `entries` is empty.
    writing: bool,
}

impl OutboxBatcher {
    pub(super) fn new(outbox: Arc<dyn Outbox>, tracker: TaskTracker) -> Self {
        Self {
            outbox,
            pending: Mutex::default(),
            tracker,
            written: Arc::default(),
        }
    }

    pub(super) fn written(&self) -> Arc<Notify> {
        Arc::clone(&self.written)
    }

    /// Queues `entry` for the next batch, starting a writer if none runs.
    pub(super) fn keep(self: &Arc<Self>, entry: OutboxEntry) {
        let mut pending = self.lock();
        pending.entries.push(entry);
        if !pending.writing {
            pending.writing = true;
            self.tracker.spawn(Arc::clone(self).write());
        }
    }

    /// What has not been written yet, taken out (for shutdown, when waiting is over).
    pub(super) fn take_unwritten(&self) -> Vec<OutboxEntry> {
        std::mem::take(&mut self.lock().entries)
    }

    async fn write(self: Arc<Self>) {
        loop {
            let batch = {
                let mut pending = self.lock();
                if pending.entries.is_empty() {
                    pending.writing = false;
                    return;
                }
                let take = pending.entries.len().min(MAX_BATCH);
                pending.entries.drain(..take).collect()
            };
            buffer(&self.outbox, batch).await;
            self.written.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
