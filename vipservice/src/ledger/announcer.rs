//! [`Announcer`]: appends this replica's claims to the ledger, many per entry.
//!
//! Callers queue a claim and wait. One task takes every claim waiting, publishes them as one
//! entry, and answers them all once the broker confirmed it. A few entries may await their
//! confirms at once; while they do, the next entry gathers, as in the offer writer's group
//! commit. The order of one replica's entries does not matter: each claims other ids.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use common::messaging::{Messaging, MessagingError, OutgoingMessage, StreamSpec};
use metrics::counter;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{error, warn};

use super::{ENTRY_TYPE, Entry};
use crate::metrics::CLAIMS_ANNOUNCED;

/// The most claims in one entry: 256 ids of 36 characters stay within one 16 KiB frame.
const MAX_ENTRY: usize = 256;
/// Entries awaiting their confirms at once.
const MAX_IN_FLIGHT: usize = 4;

/// Why a claim was not announced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    /// Messaging is closed (the service is stopping): the claim stays in the store, pending,
    /// and is announced when the service starts again.
    #[error("the ledger announcer has stopped")]
    Stopped,
}

/// A claim waiting for its entry, and who waits for it (nobody, for claims found at start).
struct Waiting {
    message_id: String,
    announced: Option<oneshot::Sender<()>>,
}

/// Appends claims to the ledger; share one per replica.
pub struct Announcer {
    requests: mpsc::UnboundedSender<Waiting>,
    task: JoinHandle<()>,
}

impl Announcer {
    /// Starts announcing claims of `replica` on `ledger`.
    pub fn start(messaging: Arc<dyn Messaging>, ledger: StreamSpec, replica: String) -> Self {
        let (requests, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(messaging, ledger, replica, receiver));
        Self { requests, task }
    }

    /// Returns once the claim of `message_id` is in the ledger.
    pub async fn announce(&self, message_id: String) -> Result<(), AnnounceError> {
        let (announced, done) = oneshot::channel();
        let waiting = Waiting {
            message_id,
            announced: Some(announced),
        };
        self.requests
            .send(waiting)
            .map_err(|_| AnnounceError::Stopped)?;
        done.await.map_err(|_| AnnounceError::Stopped)
    }

    /// Queues claims nobody waits for: those a previous run committed and may not have
    /// announced.
    pub fn announce_later(&self, message_ids: Vec<String>) {
        for message_id in message_ids {
            let waiting = Waiting {
                message_id,
                announced: None,
            };
            if self.requests.send(waiting).is_err() {
                return;
            }
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    messaging: Arc<dyn Messaging>,
    ledger: StreamSpec,
    replica: String,
    mut requests: mpsc::UnboundedReceiver<Waiting>,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        // A free slot first: claims keep gathering while every slot is busy.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = requests.recv().await else {
            return;
        };
        let mut entry = Vec::with_capacity(MAX_ENTRY);
        entry.push(first);
        while entry.len() < MAX_ENTRY {
            match requests.try_recv() {
                Ok(waiting) => entry.push(waiting),
                Err(_) => break,
            }
        }
        let claims = Entry {
            replica: replica.clone(),
            message_ids: entry.iter().map(|w| w.message_id.clone()).collect(),
        };
        let message = match OutgoingMessage::json(ENTRY_TYPE, &claims) {
            Ok(message) => message,
            Err(cause) => {
                // Strings always encode; were it not so, the claims would stay pending.
                error!(%cause, "cannot encode a ledger entry");
                continue;
            }
        };
        let (messaging, ledger) = (messaging.clone(), ledger.clone());
        tokio::spawn(async move {
            if publish(messaging.as_ref(), &ledger, message).await {
                counter!(CLAIMS_ANNOUNCED).increment(entry.len() as u64);
                for waiting in entry {
                    if let Some(announced) = waiting.announced {
                        let _ = announced.send(());
                    }
                }
            }
            drop(slot);
        });
    }
}

/// Publishes until the broker confirms (the claims wait, in the store and in their
/// deliveries, meanwhile); `false` once messaging is closed.
async fn publish(messaging: &dyn Messaging, ledger: &StreamSpec, message: OutgoingMessage) -> bool {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times();
    (|| messaging.publish_on_stream(ledger, message.clone()))
        .retry(backoff)
        .when(|error| !matches!(error, MessagingError::Closed))
        .notify(|error, delay| {
            warn!(ledger = %ledger.name, %error, ?delay, "cannot append to the ledger; retrying");
        })
        .await
        .is_ok()
}
