//! [`Announcer`]: appends this replica's claims to the ledger, many per entry.
//!
//! Callers queue a claim and wait. One task takes every claim waiting, publishes them as one
//! entry, and answers them all once the broker confirmed it. A few entries may await their
//! confirms at once; while they do, the next entry gathers, as in the offer writer's group
//! commit. The order of one replica's entries does not matter: the ledger's order decides.

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
use crate::offers::Claim;

/// The most claims in one entry: 256 claims of about 120 bytes of JSON make a 30 KiB message.
const MAX_ENTRY: usize = 256;
/// Entries awaiting their confirms at once.
const MAX_IN_FLIGHT: usize = 4;

/// Why a claim was not announced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnounceError {
    /// Messaging is closed (the service is stopping): the claim may or may not be in the
    /// ledger; the message goes back to the queue either way.
    #[error("the ledger announcer has stopped")]
    Stopped,
}

/// A claim waiting for its entry, and who waits for it.
struct Waiting {
    claim: Claim,
    announced: oneshot::Sender<()>,
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

    /// Returns once `claim` is in the ledger.
    pub async fn announce(&self, claim: Claim) -> Result<(), AnnounceError> {
        let (announced, done) = oneshot::channel();
        self.requests
            .send(Waiting { claim, announced })
            .map_err(|_| AnnounceError::Stopped)?;
        done.await.map_err(|_| AnnounceError::Stopped)
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
        let (claims, announced): (Vec<Claim>, Vec<oneshot::Sender<()>>) = entry
            .into_iter()
            .map(|waiting| (waiting.claim, waiting.announced))
            .unzip();
        let count = claims.len() as u64;
        let entry = Entry {
            replica: replica.clone(),
            claims,
        };
        let message = match OutgoingMessage::json(ENTRY_TYPE, &entry) {
            Ok(message) => message,
            Err(cause) => {
                // Strings and timestamps always encode; were it not so, the deliveries would
                // be requeued when their senders drop here.
                error!(%cause, "cannot encode a ledger entry");
                continue;
            }
        };
        let (messaging, ledger) = (messaging.clone(), ledger.clone());
        tokio::spawn(async move {
            if publish(messaging.as_ref(), &ledger, message).await {
                counter!(CLAIMS_ANNOUNCED).increment(count);
                for announced in announced {
                    let _ = announced.send(());
                }
            }
            drop(slot);
        });
    }
}

/// Publishes until the broker confirms (the claims wait in their unacked deliveries
/// meanwhile); `false` once messaging is closed.
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
