//! Errors of the offer database.

use std::path::PathBuf;
use std::sync::Arc;

/// Why the offer database could not do what was asked. Every variant names the database file.
///
/// redb's errors are boxed: they are large and this travels in every `Result`.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    /// The database file could not be opened or created.
    #[error("cannot open the offer database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// A transaction on the database failed.
    #[error("offer database {path}: cannot {action}")]
    Database {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
    /// A record could not be encoded, or a stored one decoded.
    #[error("offer database {path}: cannot {action}: bad record")]
    Record {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// Why [`super::OfferWriter::record`] gave no outcome. Nothing was recorded: the message can
/// be redelivered safely.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// The group's transaction failed; every request in the group gets the same error.
    #[error("the offer transaction failed")]
    Store(#[source] Arc<OfferError>),
    /// The writer thread is gone.
    #[error("the offer writer has stopped")]
    WriterStopped,
}
