//! [`LedgerReader`]: hands the ledger's entries, in order, to the offer writer.

use std::sync::Arc;

use async_trait::async_trait;
use common::messaging::{Handler, HandlerError, IncomingMessage};

use super::Entry;
use crate::offers::{OfferWriter, Ordered};

/// The ledger's handler. It only queues each entry behind the writer's other work; the writer
/// commits it with the offset, so a restart resumes reading after the last entry applied.
pub struct LedgerReader {
    writer: Arc<OfferWriter>,
}

impl LedgerReader {
    pub fn new(writer: Arc<OfferWriter>) -> Self {
        Self { writer }
    }
}

#[async_trait]
impl Handler for LedgerReader {
    async fn handle(&self, message: IncomingMessage) -> Result<(), HandlerError> {
        let offset = message
            .stream_offset
            .ok_or_else(|| HandlerError::Reject("a ledger entry without an offset".into()))?;
        let entry: Entry = message.json()?;
        let ordered = Ordered {
            replica: entry.replica,
            message_ids: entry.message_ids,
            offset,
        };
        // What the entry decides is counted by the writer; nobody needs to wait for it here.
        self.writer
            .apply(ordered)
            .await
            .map(drop)
            .map_err(|cause| HandlerError::Retry(cause.to_string()))
    }
}
