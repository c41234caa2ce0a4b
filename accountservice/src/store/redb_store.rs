//! [`RedbAccountStore`]: the accounts in a redb file.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, TableDefinition};

use super::{AccountStore, StoreError};
use crate::account::Account;

/// Account id → holder's name.
const ACCOUNTS: TableDefinition<&str, &str> = TableDefinition::new("accounts");
/// Facts about the database itself; [`SEEDED_KEY`] marks a seeded database.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SEEDED_KEY: &str = "seeded_accounts";

/// redb's page cache. Its default (1 GiB) is for large databases; 100 accounts need a few
/// pages (1 MiB was measured with the outbox still in this file: BENCHMARKS.md, "Memory").
const CACHE_BYTES: usize = 1 << 20;

/// How many accounts a new database is seeded with: ids `10000`.. with names `Person_0`..
pub const SEEDED_ACCOUNTS: u64 = 100;
const FIRST_SEEDED_ID: u64 = 10_000;

/// The account store on a redb file.
#[derive(Debug)]
pub struct RedbAccountStore {
    pub(super) db: Database,
    pub(super) path: PathBuf,
}

impl RedbAccountStore {
    /// Opens the database at `path`, creating it and its folder if needed, and seeds it on
    /// first use.
    ///
    /// Seeding is one transaction guarded by a marker, so a restart keeps the data as it is and
    /// an interrupted first start leaves nothing half-seeded.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(folder) = path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty())
        {
            std::fs::create_dir_all(folder).map_err(|source| StoreError::CreateFolder {
                folder: folder.to_owned(),
                path: path.clone(),
                source,
            })?;
        }
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source: Box::new(source),
            })?;
        let store = Self { db, path };
        if !store.is_seeded()? {
            store.seed()?;
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Wraps a redb failure with the file and what was being done.
    pub(super) fn error(&self, action: &'static str, source: impl Into<redb::Error>) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            action,
            source: Box::new(source.into()),
        }
    }

    fn is_seeded(&self) -> Result<bool, StoreError> {
        let action = "check whether it is seeded";
        let txn = self.db.begin_read().map_err(|e| self.error(action, e))?;
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
            Err(e) => return Err(self.error(action, e)),
        };
        let seeded = meta.get(SEEDED_KEY).map_err(|e| self.error(action, e))?;
        Ok(seeded.is_some())
    }

    /// Creates every table and inserts the seed accounts, all in one transaction.
    fn seed(&self) -> Result<(), StoreError> {
        let action = "seed the accounts";
        let txn = self.db.begin_write().map_err(|e| self.error(action, e))?;
        {
            let mut accounts = txn
                .open_table(ACCOUNTS)
                .map_err(|e| self.error(action, e))?;
            for n in 0..SEEDED_ACCOUNTS {
                let id = (FIRST_SEEDED_ID + n).to_string();
                let name = format!("Person_{n}");
                accounts
                    .insert(id.as_str(), name.as_str())
                    .map_err(|e| self.error(action, e))?;
            }
            let mut meta = txn.open_table(META).map_err(|e| self.error(action, e))?;
            meta.insert(SEEDED_KEY, SEEDED_ACCOUNTS)
                .map_err(|e| self.error(action, e))?;
        }
        txn.commit().map_err(|e| self.error(action, e))
    }
}

impl AccountStore for RedbAccountStore {
    fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let action = "read an account";
        let txn = self.db.begin_read().map_err(|e| self.error(action, e))?;
        let accounts = txn
            .open_table(ACCOUNTS)
            .map_err(|e| self.error(action, e))?;
        let name = accounts.get(id).map_err(|e| self.error(action, e))?;
        Ok(name.map(|name| Account {
            id: id.to_owned(),
            name: name.value().to_owned(),
        }))
    }

    fn is_usable(&self) -> bool {
        self.db
            .begin_read()
            .is_ok_and(|txn| txn.open_table(ACCOUNTS).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableTableMetadata;

    fn temp_store() -> (tempfile::TempDir, RedbAccountStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbAccountStore::open(dir.path().join("accounts.redb")).unwrap();
        (dir, store)
    }

    fn account_count(store: &RedbAccountStore) -> u64 {
        let txn = store.db.begin_read().unwrap();
        txn.open_table(ACCOUNTS).unwrap().len().unwrap()
    }

    #[test]
    fn seeds_one_hundred_accounts() {
        let (_dir, store) = temp_store();
        assert_eq!(account_count(&store), SEEDED_ACCOUNTS);
        let first = store.account("10000").unwrap().unwrap();
        assert_eq!(
            first,
            Account {
                id: "10000".into(),
                name: "Person_0".into()
            }
        );
        let last = store.account("10099").unwrap().unwrap();
        assert_eq!(last.name, "Person_99");
        assert!(store.account("10100").unwrap().is_none());
        assert!(store.account("9999").unwrap().is_none());
        assert!(store.is_usable());
    }

    #[test]
    fn reopening_keeps_the_data_and_does_not_reseed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounts.redb");
        let store = RedbAccountStore::open(&path).unwrap();
        {
            let txn = store.db.begin_write().unwrap();
            {
                let mut accounts = txn.open_table(ACCOUNTS).unwrap();
                accounts.insert("10000", "Renamed").unwrap();
                accounts.remove("10001").unwrap();
            }
            txn.commit().unwrap();
        }
        drop(store);

        let store = RedbAccountStore::open(&path).unwrap();
        assert_eq!(store.account("10000").unwrap().unwrap().name, "Renamed");
        assert!(store.account("10001").unwrap().is_none());
        assert_eq!(account_count(&store), SEEDED_ACCOUNTS - 1);
    }

    #[test]
    fn creates_the_missing_folders_of_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/nested/accounts.redb");
        let store = RedbAccountStore::open(&path).unwrap();
        assert_eq!(account_count(&store), SEEDED_ACCOUNTS);
        assert!(path.is_file());
    }

    #[test]
    fn a_folder_that_cannot_be_made_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("data");
        std::fs::write(&blocker, b"a file where the folder should be").unwrap();
        let path = blocker.join("accounts.redb");
        let err = RedbAccountStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::CreateFolder { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("folder {}", blocker.display())),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn an_unopenable_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-database");
        std::fs::write(&path, b"this is not a redb file, just some text").unwrap();
        let err = RedbAccountStore::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(err.to_string().contains("not-a-database"), "{err}");
    }
}
