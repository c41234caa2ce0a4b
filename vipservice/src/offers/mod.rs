//! The VIP offers database that every replica shares: every processed notification, with its
//! offer, exactly once.
//!
//! [`OfferDb`] is the database (SQLite by default, PostgreSQL across hosts; one setting, the
//! URL, selects it). Writes go through [`OfferWriter`], which commits many notifications per
//! transaction (group commit): a commit costs an fsync, so one per message would cap the
//! consumer far below the broker's rate. Each notification's `message_id` goes into the
//! processed-messages (inbox) table in the same transaction as its offer, so a redelivered or
//! republished message — at this replica or any other — conflicts on the primary key and
//! creates nothing new.

mod db;
mod model;
mod writer;

pub use db::{Incoming, OfferDb};
pub use model::{Offer, OfferRule, Outcome};
pub use writer::{DEFAULT_MAX_BATCH, DatabaseDown, OfferWriter};

use std::sync::Arc;

use common::database::DatabaseError;

/// Why [`OfferWriter::record`] gave no outcome. Nothing was recorded: the message can be
/// redelivered safely.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// The database refused the notification's transaction (not for being away).
    #[error("the offer transaction failed")]
    Store(#[source] Arc<DatabaseError>),
    /// The database is away and the service is stopping: nobody waits for it any more.
    #[error("the offer database is away: {0}")]
    Unavailable(String),
    /// The writer task is gone.
    #[error("the offer writer has stopped")]
    WriterStopped,
}

#[cfg(test)]
mod tests;
