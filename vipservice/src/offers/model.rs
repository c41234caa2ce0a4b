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

/// What recording one notification did, once its transaction committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First time this `message_id` was seen: an offer was made.
    Offered,
    /// First time this `message_id` was seen: no offer (the rule's minimum interval).
    NotOffered,
    /// This `message_id` was processed before, by this replica or another: nothing new.
    Duplicate,
}
