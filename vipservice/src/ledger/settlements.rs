//! [`Settlements`]: the deliveries waiting for their claims to be applied in this store.

use std::collections::HashMap;
use std::sync::Mutex;

use metrics::gauge;
use tokio::sync::oneshot;

use crate::metrics::CLAIMS_PENDING;
use crate::offers::RecordError;

/// What became of a claim: applied (an offer, a no-offer or a duplicate, all durable), or
/// the transaction applying it failed.
pub type Settled = Result<(), RecordError>;

/// Who waits for which `message_id`. The consumer registers a delivery before announcing its
/// claim; the ledger reader settles every id of this replica's entries once applied. The same
/// id twice (a message published twice) is settled by the first entry that holds it, when it
/// is decided.
#[derive(Debug, Default)]
pub struct Settlements {
    waiting: Mutex<HashMap<String, Vec<oneshot::Sender<Settled>>>>,
}

impl Settlements {
    /// Registers a delivery of `message_id`; the receiver answers once its claim is applied.
    /// A receiver dropped before that (the service is stopping) is forgotten at settlement.
    pub fn expect(&self, message_id: &str) -> oneshot::Receiver<Settled> {
        let (settle, settled) = oneshot::channel();
        let mut waiting = self.lock();
        waiting
            .entry(message_id.to_owned())
            .or_default()
            .push(settle);
        gauge!(CLAIMS_PENDING).set(waiting.len() as f64);
        settled
    }

    /// Answers everyone waiting for one of `message_ids`.
    pub fn settle<'a>(&self, message_ids: impl IntoIterator<Item = &'a str>, result: &Settled) {
        let mut waiting = self.lock();
        for message_id in message_ids {
            for settle in waiting.remove(message_id).unwrap_or_default() {
                let _ = settle.send(result.clone());
            }
        }
        gauge!(CLAIMS_PENDING).set(waiting.len() as f64);
    }

    /// The number of `message_id`s waiting.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<oneshot::Sender<Settled>>>> {
        // A panic while holding this lock cannot leave the map inconsistent: use it anyway.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
