//! The names of vipservice's metrics on `/metrics`.

/// Deliveries handed to the consumer.
pub const CONSUMED: &str = "vip_notifications_consumed_total";
/// Notifications that became an offer (counted when the ledger orders the claim).
pub const OFFERS_MADE: &str = "vip_offers_made_total";
/// Notifications processed without an offer (the rule's minimum interval).
pub const NO_OFFERS: &str = "vip_no_offers_total";
/// Deliveries whose `message_id` was processed before, here or by another replica (a claim
/// that another replica's preceded in the ledger included).
pub const DUPLICATES_DROPPED: &str = "vip_duplicates_dropped_total";
/// Deliveries rejected as invalid, hence dead-lettered at once.
pub const DEAD_LETTERED: &str = "vip_dead_lettered_total";
/// Time from delivery to the handler's answer, commit included.
pub const HANDLER_LATENCY: &str = "vip_handler_duration_seconds";
/// Claims announced on the ledger (one entry holds many).
pub const CLAIMS_ANNOUNCED: &str = "vip_claims_announced_total";
/// Claims the ledger has not ordered yet: a moment's worth normally; a figure that stays up
/// means the ledger is not being read (or was reset under the stores, see the README).
pub const CLAIMS_PENDING: &str = "vip_claims_pending";
