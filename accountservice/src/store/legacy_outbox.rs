//! The outbox earlier versions kept in the redb file: read once at startup so that what it
//! holds moves to the outbox database, then deleted.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{RedbAccountStore, StoreError};
use crate::outbox::OutboxEntry;

/// Sequence number → (`message_id`, JSON body), as earlier versions wrote it.
const ENTRIES: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("outbox");
/// `message_id` → sequence number in [`ENTRIES`].
const BY_MESSAGE_ID: TableDefinition<&str, u64> = TableDefinition::new("outbox_by_message_id");

impl RedbAccountStore {
    /// The entries an earlier version left in this file, oldest first (none if it left none).
    pub fn legacy_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let action = "read the outbox of an earlier version";
        let txn = self.db.begin_read().map_err(|e| self.error(action, e))?;
        let table = match txn.open_table(ENTRIES) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.error(action, e)),
        };
        let rows = table.iter().map_err(|e| self.error(action, e))?;
        rows.map(|row| {
            let (_, value) = row.map_err(|e| self.error(action, e))?;
            let (message_id, body) = value.value();
            Ok(OutboxEntry {
                message_id: message_id.to_owned(),
                body: String::from_utf8_lossy(body).into_owned(),
                trace_parent: None,
            })
        })
        .collect()
    }

    /// Deletes the earlier version's outbox tables, once their entries are elsewhere.
    pub fn drop_legacy_outbox(&self) -> Result<(), StoreError> {
        let action = "delete the outbox of an earlier version";
        let txn = self.db.begin_write().map_err(|e| self.error(action, e))?;
        txn.delete_table(ENTRIES)
            .map_err(|e| self.error(action, e))?;
        txn.delete_table(BY_MESSAGE_ID)
            .map_err(|e| self.error(action, e))?;
        txn.commit().map_err(|e| self.error(action, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_an_earlier_version_left_are_read_oldest_first_then_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbAccountStore::open(dir.path().join("db.redb")).unwrap();
        assert!(
            store.legacy_outbox().unwrap().is_empty(),
            "none in a new store"
        );
        // As earlier versions wrote them.
        let txn = store.db.begin_write().unwrap();
        {
            let mut entries = txn.open_table(ENTRIES).unwrap();
            let mut index = txn.open_table(BY_MESSAGE_ID).unwrap();
            for (seq, id) in [(0, "z"), (1, "a")] {
                entries
                    .insert(seq, (id, br#"{"accountId":"10000"}"#.as_slice()))
                    .unwrap();
                index.insert(id, seq).unwrap();
            }
        }
        txn.commit().unwrap();

        let left = store.legacy_outbox().unwrap();
        let ids: Vec<_> = left.iter().map(|e| e.message_id.as_str()).collect();
        assert_eq!(ids, ["z", "a"]);
        assert_eq!(left[0].body, r#"{"accountId":"10000"}"#);
        store.drop_legacy_outbox().unwrap();
        assert!(store.legacy_outbox().unwrap().is_empty());
    }
}
