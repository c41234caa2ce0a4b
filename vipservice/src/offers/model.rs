//! What the offer database records and answers.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The business rule, from settings; the caller may replace it at any time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferRule {
    /// The text of every offer made.
    pub text: String,
    /// The least time between two offers to the same account, measured on the notifications'
    /// `readAt`; zero makes every notification an offer.
    pub min_interval: Duration,
}

impl Default for OfferRule {
    fn default() -> Self {
        Self {
            text: "Thank you for being a VIP: enjoy a free upgrade to our premium account".into(),
            min_interval: Duration::ZERO,
        }
    }
}

/// An offer made to an account, as `GET /offers/{accountId}` serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Offer {
    /// The notification that led to it.
    pub message_id: String,
    pub account_id: String,
    pub text: String,
    /// When the account was read, from the notification.
    pub read_at: DateTime<Utc>,
    /// When the offer was recorded.
    pub offered_at: DateTime<Utc>,
}

/// What was decided for one processed notification; stored under its `message_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub account_id: String,
    /// Whether an offer was made.
    pub offered: bool,
    pub processed_at: DateTime<Utc>,
}

/// What a replica decided for a notification before the ledger ordered it: it becomes the
/// notification's [`Decision`] (and [`Offer`]) if this replica's claim comes first in the
/// ledger, and is dropped otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    pub account_id: String,
    /// The offer's text, if the rule allowed an offer.
    pub offer_text: Option<String>,
    pub read_at: DateTime<Utc>,
    pub claimed_at: DateTime<Utc>,
}

/// The answer to one [`super::OfferWriter::record`] call, given once it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This replica claims the notification (now, or by a claim made before and not yet
    /// ordered): the claim must be announced on the ledger before the message is acked.
    Claimed,
    /// This `message_id` was processed before, here or by another replica; nothing new was
    /// recorded.
    Duplicate,
}

/// One ledger entry: the `message_ids` a replica claimed, at its offset in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    pub replica: String,
    pub message_ids: Vec<String>,
    pub offset: u64,
}

/// What applying ledger entries decided for this replica's claims.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Claims of this replica that came first, with an offer.
    pub offers: u64,
    /// Claims of this replica that came first, without an offer (the rule's minimum interval).
    pub no_offers: u64,
    /// Claims of this replica that another replica's claim preceded: dropped as duplicates.
    pub lost: u64,
}

/// Totals since the database was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Notifications processed (offers plus no-offers).
    pub processed: u64,
    pub offers: u64,
    pub no_offers: u64,
    /// Notifications dropped because their `message_id` was already processed, here or by
    /// another replica (including this replica's claims that lost in the ledger).
    pub duplicates: u64,
    /// Claims not yet ordered by the ledger.
    pub pending: u64,
}
