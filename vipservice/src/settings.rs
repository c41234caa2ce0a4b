//! vipservice's own settings, read next to the common ones from the same config files.

use std::time::Duration;

use common::config::{InvalidSetting, Settings};
use common::database::{DatabaseRole, DatabaseSettings};
use serde::{Deserialize, Serialize};

use crate::offers::OfferRule;

/// The keys only vipservice reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VipSettings {
    /// The work queue notifications arrive on (tests use their own).
    pub vip_queue: String,
    /// The offers database that every replica shares.
    pub offers: OffersDatabaseSettings,
    pub processed_messages: ProcessedMessagesSettings,
    pub offer: OfferSettings,
}

impl Default for VipSettings {
    fn default() -> Self {
        Self {
            vip_queue: common::notification::VIP_QUEUE.to_owned(),
            offers: OffersDatabaseSettings::default(),
            processed_messages: ProcessedMessagesSettings::default(),
            offer: OfferSettings::default(),
        }
    }
}

/// The offers database: the section `offers`.
#[derive(Debug, Clone, PartialEq)]
pub struct OffersDatabase;

impl DatabaseRole for OffersDatabase {
    const SETTING: &'static str = "offers";
    const DEFAULT_URL: &'static str = "sqlite://data/vipservice.db?mode=rwc";
    /// One writes, the others serve `/offers`.
    const DEFAULT_MAX_CONNECTIONS: u32 = 4;
}

pub type OffersDatabaseSettings = DatabaseSettings<OffersDatabase>;

/// The inbox of processed message ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessedMessagesSettings {
    /// How long a processed message id is remembered (and a redelivery of it recognised).
    pub retention_days: u32,
}

impl Default for ProcessedMessagesSettings {
    fn default() -> Self {
        Self { retention_days: 7 }
    }
}

impl ProcessedMessagesSettings {
    /// How long processed message ids are kept.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.retention_days) * 24 * 3600)
    }
}

/// The business rule; a config refresh applies it to the next group of notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OfferSettings {
    /// The text of every offer.
    pub text: String,
    /// The least time between two offers to one account (by `readAt`); 0 offers every time.
    pub min_interval_ms: u64,
}

impl Default for OfferSettings {
    fn default() -> Self {
        let rule = OfferRule::default();
        Self {
            text: rule.text,
            min_interval_ms: 0,
        }
    }
}

impl OfferSettings {
    /// The rule the offer writer applies.
    pub fn rule(&self) -> OfferRule {
        OfferRule {
            text: self.text.clone(),
            min_interval: Duration::from_millis(self.min_interval_ms),
        }
    }
}

impl Settings for VipSettings {
    /// The database is connected and the queue subscribed once, at startup.
    const RESTART_KEYS: &'static [&'static str] = &["offers", "processed_messages", "vip_queue"];

    fn validate(&self) -> Result<(), InvalidSetting> {
        if self.vip_queue.is_empty() {
            return Err(InvalidSetting::new("vip_queue", "must not be empty"));
        }
        self.offers.validate()?;
        if self.processed_messages.retention_days == 0 {
            return Err(InvalidSetting::new(
                "processed_messages.retention_days",
                "must be at least 1",
            ));
        }
        if self.offer.text.trim().is_empty() {
            return Err(InvalidSetting::new("offer.text", "must not be empty"));
        }
        Ok(())
    }
}
