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

/// A replica's claim of a notification, as the ledger carries it: the notification travels
/// with its claim, so the store the claim wins in makes the offer from the ledger alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    pub message_id: String,
    pub account_id: String,
    /// When the account was read, from the notification.
    pub read_at: DateTime<Utc>,
}

/// One ledger entry: the claims of a replica, at its offset in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    pub replica: String,
    pub claims: Vec<Claim>,
    pub offset: u64,
}

/// What applying ledger entries decided for this replica's claims.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The entry lies before the offset this store has read up to, so it was not applied
    /// now: a re-read, or a ledger that started over below the store (its claims are not
    /// decided by it).
    pub skipped: bool,
    /// Claims of this replica that came first, with an offer.
    pub offers: u64,
    /// Claims of this replica that came first, without an offer (the rule's minimum interval).
    pub no_offers: u64,
    /// Claims of this replica whose notification was decided before, here or by another
    /// replica's earlier claim: dropped as duplicates.
    pub duplicates: u64,
}

/// Totals since the database was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Notifications processed (offers plus no-offers).
    pub processed: u64,
    pub offers: u64,
    pub no_offers: u64,
    /// This replica's claims dropped because their `message_id` was already decided, here or
    /// by another replica whose claim came first in the ledger.
    pub duplicates: u64,
}
