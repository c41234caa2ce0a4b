//! Errors of the account store.

use std::path::PathBuf;

/// Why the account store could not do what was asked. Every variant names the database file.
///
/// redb's errors are boxed: they are large and this travels in every `Result`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The folder of the database file did not exist and could not be created.
    #[error("cannot create the folder {} of the account store {}", folder.display(), path.display())]
    CreateFolder {
        folder: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be opened or created.
    #[error("cannot open the account store {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    /// A transaction on the database failed.
    #[error("account store {}: cannot {action}", path.display())]
    Database {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: Box<redb::Error>,
    },
}
