//! The service's embedded account store: the seeded accounts in a redb file. Nothing here
//! must outlive a task (every start seeds the same accounts); the outbox, which must, lives in
//! a database of its own ([`crate::outbox`]).
//!
//! The trait is synchronous: a redb read takes microseconds and never waits for a writer, so
//! handlers call [`AccountStore`] directly.

mod error;
mod legacy_outbox;
mod redb_store;

pub use error::StoreError;
pub use redb_store::{RedbAccountStore, SEEDED_ACCOUNTS};

use crate::account::Account;

/// Read access to the accounts.
#[cfg_attr(test, mockall::automock)]
pub trait AccountStore: Send + Sync {
    /// The account with this id, or `None` if there is none.
    fn account(&self, id: &str) -> Result<Option<Account>, StoreError>;

    /// Whether the store can still serve reads (for `/health`).
    fn is_usable(&self) -> bool;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Handlers hold the store as a trait object; the mock must fit there too.
    #[test]
    fn the_mock_stands_in_for_the_store_behind_a_trait_object() {
        let mut accounts = MockAccountStore::new();
        accounts
            .expect_account()
            .withf(|id| id == "10000")
            .returning(|id| {
                Ok(Some(Account {
                    id: id.to_owned(),
                    name: "Person_0".into(),
                }))
            });
        let accounts: Arc<dyn AccountStore> = Arc::new(accounts);
        assert_eq!(accounts.account("10000").unwrap().unwrap().name, "Person_0");
    }
}
