//! Errors of the account store.

use std::path::PathBuf;

/// Why the account store could not do what was asked. Every variant names the database file.
///
/// redb's errors are boxed: they are large and this travels in every `Result`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("cannot open the account store {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// A transaction on the database failed.
    #[error("account store {path}: cannot {action}")]
    Database {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
}
