//! [`LedgerReader`]: hands the ledger's entries, in order, to the offer writer, and settles
//! this replica's deliveries once their claims are applied.

use std::sync::Arc;

use async_trait::async_trait;
use common::messaging::{Handler, HandlerError, IncomingMessage};
use tracing::warn;

use super::{Entry, Settlements};
use crate::offers::{OfferWriter, Ordered, RecordError};

/// The ledger's handler. It only queues each entry behind the writer's other work (the
/// writer commits it with the offset, so a restart resumes reading after the last entry
/// applied); this replica's entries are settled from a task once committed.
pub struct LedgerReader {
    writer: Arc<OfferWriter>,
    settlements: Arc<Settlements>,
    replica: String,
}

impl LedgerReader {
    pub fn new(writer: Arc<OfferWriter>, settlements: Arc<Settlements>, replica: String) -> Self {
        Self {
            writer,
            settlements,
            replica,
        }
    }
}

#[async_trait]
impl Handler for LedgerReader {
    async fn handle(&self, message: IncomingMessage) -> Result<(), HandlerError> {
        let offset = message
            .stream_offset
            .ok_or_else(|| HandlerError::Reject("a ledger entry without an offset".into()))?;
        let entry: Entry = message.json()?;
        let mine = entry.replica == self.replica;
        let message_ids: Vec<String> = if mine {
            entry.claims.iter().map(|c| c.message_id.clone()).collect()
        } else {
            Vec::new()
        };
        let ordered = Ordered {
            replica: entry.replica,
            claims: entry.claims,
            offset,
        };
        // What the entry decides is counted by the writer.
        let applying = self
            .writer
            .apply(ordered)
            .await
            .map_err(|cause| HandlerError::Retry(cause.to_string()))?;
        if mine {
            let settlements = self.settlements.clone();
            tokio::spawn(async move {
                let settled = match applying.await.unwrap_or(Err(RecordError::WriterStopped)) {
                    // Not applied (see `Resolved::skipped`): its deliveries keep waiting, as
                    // `vip_claims_pending` shows, rather than being acked without a decision.
                    Ok(resolved) if resolved.skipped => {
                        warn!(
                            offset,
                            "a ledger entry of this replica lies before the store's offset; not applied"
                        );
                        return;
                    }
                    result => result.map(drop),
                };
                settlements.settle(message_ids.iter().map(String::as_str), &settled);
            });
        }
        Ok(())
    }
}
