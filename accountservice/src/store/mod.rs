//! The service's embedded database: accounts and the outbox of VIP notifications.
//!
//! Both live in one redb file so a single health check covers them. The traits are
//! synchronous: a redb read takes microseconds and never waits for a writer, so handlers call
//! [`AccountStore`] directly. [`Outbox`] writes wait for an fsync (milliseconds): call them
//! from `tokio::task::spawn_blocking`.

mod error;
mod outbox;
mod redb_store;

pub use error::StoreError;
pub use outbox::OutboxEntry;
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

/// The durable outbox: VIP notifications that could not be published yet, oldest first.
///
/// Every operation is one durable transaction.
#[cfg_attr(test, mockall::automock)]
pub trait Outbox: Send + Sync {
    /// Appends entries after those already pending, in the given order. An entry whose
    /// `message_id` is already pending is skipped, so persisting twice stores once. Returns how
    /// many were added.
    fn append(&self, entries: &[OutboxEntry]) -> Result<usize, StoreError>;

    /// Up to `limit` pending entries, oldest first.
    fn oldest(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Removes the entries with these message ids once they have been published, in one
    /// transaction. Returns how many were pending.
    fn remove(&self, message_ids: &[String]) -> Result<usize, StoreError>;

    /// How many entries are pending.
    fn depth(&self) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Handlers hold the store as a trait object; the mocks must fit there too.
    #[test]
    fn the_mocks_stand_in_for_the_store_behind_a_trait_object() {
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

        let mut outbox = MockOutbox::new();
        outbox.expect_depth().returning(|| Ok(3));
        let outbox: Arc<dyn Outbox> = Arc::new(outbox);
        assert_eq!(outbox.depth().unwrap(), 3);
    }
}
