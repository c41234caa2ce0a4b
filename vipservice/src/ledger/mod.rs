//! The claim ledger: how replicas that each keep their own offer database still turn every
//! notification into exactly one offer.
//!
//! A work queue delivers a message to one consumer at a time, but not always to one consumer
//! only: a replica killed after committing a notification and before its ack reached the
//! broker gets it redelivered to another replica, and a publisher that lost a confirm
//! publishes the message again. Each replica only knows its own store, so both would make the
//! offer. The ledger is the record they share: a RabbitMQ stream next to the work queue,
//! `<vip_queue>.ledger`, which every replica reads whole and in the same order.
//!
//! - A replica *claims* each notification it is handed by appending the claim, with the
//!   notification, to the ledger ([`Announcer`], many claims per entry).
//! - Every replica reads the ledger ([`LedgerReader`]) and applies it in order, in one group
//!   commit per batch of entries: the first claim of a `message_id` wins. The winner makes
//!   its decision and offer from the claim itself; every other claim of that id is dropped
//!   as a duplicate. Since all replicas read the same order, they all agree, without talking
//!   to each other.
//! - The message is acked once its own claim is applied in this replica's store
//!   ([`Settlements`]): the offer (or the finding that it is a duplicate) is durable by then.
//!
//! A replica that stops after announcing a claim and before acking its message leaves the
//! claim in the ledger: the message goes back to the queue, another replica's claim of it
//! comes later and is dropped, and the first replica makes the offer from the ledger when it
//! starts again. Each notification is written to the store once (not claimed, then decided),
//! which halves the store's work per message. The ledger keeps a week (or 1 GiB) of entries:
//! a replica away for longer starts over from what is left, which can only matter for a
//! message that waited in the queue that long as well.

mod announcer;
mod reader;
mod settlements;

use common::messaging::StreamSpec;
use serde::{Deserialize, Serialize};

use crate::offers::Claim;

pub use announcer::{AnnounceError, Announcer};
pub use reader::LedgerReader;
pub use settlements::{Settled, Settlements};

/// The AMQP `type` of a ledger entry.
pub const ENTRY_TYPE: &str = "VipClaims";

/// The ledger that goes with a work queue.
pub fn stream_for(vip_queue: &str) -> StreamSpec {
    StreamSpec::new(format!("{vip_queue}.ledger"))
}

/// One ledger entry as published: a replica's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub replica: String,
    pub claims: Vec<Claim>,
}

#[cfg(test)]
mod tests;
