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
//! - A replica first *claims* a notification in its store (durably, in its group commit),
//!   then appends the claim to the ledger ([`Announcer`]), and only then acks the message.
//! - Every replica reads the ledger ([`LedgerReader`]) and applies it in order: the first
//!   claim of a `message_id` wins. The winner's claim becomes its decision and offer; every
//!   other claim of that id is dropped as a duplicate. Since all replicas read the same
//!   order, they all agree, without talking to each other.
//! - A claim committed but not announced (a crash in between) is announced when the replica
//!   starts again; if another replica claimed the id meanwhile, that claim is first.
//!
//! Offers therefore appear once their claim is ordered: one ledger round trip after the
//! commit. The ledger keeps a week (or 1 GiB) of entries: a replica away for longer starts
//! over from what is left, which can only matter for a message that waited in the queue that
//! long as well.

mod announcer;
mod reader;

use common::messaging::StreamSpec;
use serde::{Deserialize, Serialize};

pub use announcer::{AnnounceError, Announcer};
pub use reader::LedgerReader;

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
    pub message_ids: Vec<String>,
}

#[cfg(test)]
mod tests;
