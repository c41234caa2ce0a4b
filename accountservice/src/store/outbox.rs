//! The durable outbox: VIP notifications waiting to be published, in the order they came.
//!
//! Entries are keyed by a sequence number, so they come back oldest first; an index from
//! `message_id` to sequence number makes removal by id and duplicate detection cheap.

use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};

use super::{Outbox, RedbAccountStore, StoreError};

/// Sequence number → (`message_id`, JSON body).
const ENTRIES: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("outbox");
/// `message_id` → sequence number in [`ENTRIES`].
const BY_MESSAGE_ID: TableDefinition<&str, u64> = TableDefinition::new("outbox_by_message_id");

/// A VIP notification waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The stable id the message is published with, so consumers can drop duplicates.
    pub message_id: String,
    /// The message body: the notification's JSON.
    pub body: Vec<u8>,
}

/// Creates the outbox tables, so reads never find them missing.
pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(ENTRIES)?;
    txn.open_table(BY_MESSAGE_ID)?;
    Ok(())
}

impl Outbox for RedbAccountStore {
    fn append(&self, entries: &[OutboxEntry]) -> Result<usize, StoreError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let action = "append to the outbox";
        let txn = self.db.begin_write().map_err(|e| self.error(action, e))?;
        let mut added = 0;
        {
            let mut table = txn.open_table(ENTRIES).map_err(|e| self.error(action, e))?;
            let mut index = txn
                .open_table(BY_MESSAGE_ID)
                .map_err(|e| self.error(action, e))?;
            let last = table.last().map_err(|e| self.error(action, e))?;
            let mut next = last.map_or(0, |(seq, _)| seq.value() + 1);
            for entry in entries {
                let id = entry.message_id.as_str();
                if index.get(id).map_err(|e| self.error(action, e))?.is_some() {
                    continue;
                }
                table
                    .insert(next, (id, entry.body.as_slice()))
                    .map_err(|e| self.error(action, e))?;
                index.insert(id, next).map_err(|e| self.error(action, e))?;
                next += 1;
                added += 1;
            }
        }
        txn.commit().map_err(|e| self.error(action, e))?;
        Ok(added)
    }

    fn oldest(&self, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let action = "read the outbox";
        let txn = self.db.begin_read().map_err(|e| self.error(action, e))?;
        let table = txn.open_table(ENTRIES).map_err(|e| self.error(action, e))?;
        let iter = table.iter().map_err(|e| self.error(action, e))?;
        iter.take(limit)
            .map(|row| {
                let (_, value) = row.map_err(|e| self.error(action, e))?;
                let (message_id, body) = value.value();
                Ok(OutboxEntry {
                    message_id: message_id.to_owned(),
                    body: body.to_vec(),
                })
            })
            .collect()
    }

    fn remove(&self, message_ids: &[String]) -> Result<usize, StoreError> {
        let action = "remove from the outbox";
        let txn = self.db.begin_write().map_err(|e| self.error(action, e))?;
        let mut removed = 0;
        {
            let mut index = txn
                .open_table(BY_MESSAGE_ID)
                .map_err(|e| self.error(action, e))?;
            let mut table = txn.open_table(ENTRIES).map_err(|e| self.error(action, e))?;
            for message_id in message_ids {
                let seq = index
                    .remove(message_id.as_str())
                    .map_err(|e| self.error(action, e))?
                    .map(|seq| seq.value());
                if let Some(seq) = seq {
                    table.remove(seq).map_err(|e| self.error(action, e))?;
                    removed += 1;
                }
            }
        }
        txn.commit().map_err(|e| self.error(action, e))?;
        Ok(removed)
    }

    fn depth(&self) -> Result<u64, StoreError> {
        let action = "count the outbox";
        let txn = self.db.begin_read().map_err(|e| self.error(action, e))?;
        let table = txn.open_table(ENTRIES).map_err(|e| self.error(action, e))?;
        table.len().map_err(|e| self.error(action, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> OutboxEntry {
        OutboxEntry {
            message_id: id.into(),
            body: format!(r#"{{"accountId":"10000","readAt":"{id}"}}"#).into_bytes(),
        }
    }

    fn ids(entries: &[OutboxEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.message_id.as_str()).collect()
    }

    #[test]
    fn entries_come_back_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbAccountStore::open(dir.path().join("db.redb")).unwrap();
        assert_eq!(store.depth().unwrap(), 0);
        assert!(store.oldest(10).unwrap().is_empty());
        assert_eq!(store.append(&[]).unwrap(), 0);

        // Ids in an order unlike their sort order, to show the order is arrival, not id.
        assert_eq!(store.append(&[entry("c"), entry("a")]).unwrap(), 2);
        assert_eq!(store.append(&[entry("b")]).unwrap(), 1);
        assert_eq!(store.depth().unwrap(), 3);
        assert_eq!(ids(&store.oldest(2).unwrap()), ["c", "a"]);
        let all = store.oldest(10).unwrap();
        assert_eq!(all, [entry("c"), entry("a"), entry("b")]);
    }

    #[test]
    fn remove_by_message_id_keeps_the_order_of_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbAccountStore::open(dir.path().join("db.redb")).unwrap();
        store.append(&[entry("1"), entry("2"), entry("3")]).unwrap();

        assert_eq!(store.remove(&["3".into()]).unwrap(), 1);
        assert_eq!(store.remove(&["3".into(), "unknown".into()]).unwrap(), 0);
        store.append(&[entry("4")]).unwrap();
        assert_eq!(store.remove(&["1".into()]).unwrap(), 1);

        assert_eq!(ids(&store.oldest(10).unwrap()), ["2", "4"]);
        assert_eq!(store.depth().unwrap(), 2);
    }

    #[test]
    fn appending_a_pending_message_id_again_stores_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbAccountStore::open(dir.path().join("db.redb")).unwrap();
        assert_eq!(store.append(&[entry("x"), entry("x")]).unwrap(), 1);
        assert_eq!(store.append(&[entry("x"), entry("y")]).unwrap(), 1);
        assert_eq!(ids(&store.oldest(10).unwrap()), ["x", "y"]);
    }

    #[test]
    fn pending_entries_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let store = RedbAccountStore::open(&path).unwrap();
        store.append(&[entry("p1"), entry("p2")]).unwrap();
        drop(store);

        let store = RedbAccountStore::open(&path).unwrap();
        assert_eq!(store.oldest(10).unwrap(), [entry("p1"), entry("p2")]);
        assert_eq!(store.remove(&["p1".into()]).unwrap(), 1);
        assert_eq!(store.depth().unwrap(), 1);
    }
}
