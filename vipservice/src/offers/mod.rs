//! The VIP offer database: every processed notification, with its decision, exactly once.
//!
//! [`OfferDb`] owns the redb file and answers queries. Writes go through [`OfferWriter`], a
//! dedicated thread that commits many notifications per transaction (group commit): an fsync
//! costs milliseconds, so one per message would cap the consumer far below the broker's rate.
//! The notification's `message_id` is recorded in the same transaction as its decision, so a
//! redelivered message is recognised and creates nothing new.

mod db;
mod error;
mod model;
mod writer;

pub use db::OfferDb;
pub use error::{OfferError, RecordError};
pub use model::{Claim, Counts, Decision, Offer, OfferRule, Ordered, Outcome, Resolved};
pub use writer::{Applying, DEFAULT_MAX_BATCH, OfferWriter};

#[cfg(test)]
mod tests;
