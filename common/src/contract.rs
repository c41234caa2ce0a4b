//! The names outside tools read: metrics on `/metrics` and the queue. They are part of the
//! wire contract, so the services and `loadtest` (which imports no service crate) take them
//! from here and cannot drift apart.

/// accountservice's metrics.
pub mod accountservice {
    /// Notifications the broker confirmed (straight away, or later from the outbox).
    pub const PUBLISHED: &str = "vip_notifications_published_total";
    /// Publishes that failed or timed out (their notifications stay in the outbox).
    pub const FAILED: &str = "vip_notifications_failed_total";
    /// Notifications written to the outbox (every VIP read answered 200).
    pub const BUFFERED: &str = "vip_notifications_buffered_total";
    /// Notifications in the outbox, not yet confirmed by the broker.
    pub const OUTBOX_DEPTH: &str = "vip_outbox_depth";
    /// Age of the oldest notification in the outbox, in seconds (0 when it is empty).
    pub const OUTBOX_OLDEST_AGE: &str = "vip_outbox_oldest_age_seconds";
    /// Seconds from a notification's commit to the outbox to the broker's confirm, for those
    /// published straight after their commit (a histogram).
    pub const COMMIT_TO_CONFIRM: &str = "vip_outbox_commit_to_confirm_seconds";
}

/// vipservice's metrics.
pub mod vipservice {
    /// Deliveries handed to the consumer.
    pub const CONSUMED: &str = "vip_notifications_consumed_total";
    /// Notifications that became an offer (counted at their commit).
    pub const OFFERS_MADE: &str = "vip_offers_made_total";
    /// Notifications processed without an offer (the rule's minimum interval).
    pub const NO_OFFERS: &str = "vip_no_offers_total";
    /// Deliveries whose `message_id` was processed before, by this replica or another.
    pub const DUPLICATES_DROPPED: &str = "vip_duplicates_dropped_total";
    /// Deliveries rejected as invalid, hence dead-lettered at once.
    pub const DEAD_LETTERED: &str = "vip_dead_lettered_total";
    /// Time from delivery to the handler's answer, commit included.
    pub const HANDLER_LATENCY: &str = "vip_handler_duration_seconds";
    /// Time from the VIP read (the notification's `readAt`) to its delivery here: how far
    /// the consumers lag behind the reads, outbox and queue included (a histogram).
    pub const NOTIFICATION_LAG: &str = "vip_notification_lag_seconds";
}
