//! vipservice's own settings, read next to the common ones from the same config files.

use std::path::PathBuf;
use std::time::Duration;

use common::config::{InvalidSetting, Settings};
use serde::{Deserialize, Serialize};

use crate::offers::OfferRule;

/// The keys only vipservice reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VipSettings {
    /// The work queue notifications arrive on (tests use their own).
    pub vip_queue: String,
    pub store: StoreSettings,
    pub offer: OfferSettings,
}

impl Default for VipSettings {
    fn default() -> Self {
        Self {
            vip_queue: common::notification::VIP_QUEUE.to_owned(),
            store: StoreSettings::default(),
            offer: OfferSettings::default(),
        }
    }
}

/// Where the VIP offer database lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreSettings {
    /// The redb file; its folder is created if missing.
    pub path: PathBuf,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/vipservice.redb"),
        }
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
    /// The file is opened and the queue subscribed once, at startup.
    const RESTART_KEYS: &'static [&'static str] = &["store", "vip_queue"];

    fn validate(&self) -> Result<(), InvalidSetting> {
        if self.vip_queue.is_empty() {
            return Err(InvalidSetting::new("vip_queue", "must not be empty"));
        }
        if self.store.path.as_os_str().is_empty() {
            return Err(InvalidSetting::new("store.path", "must not be empty"));
        }
        if self.offer.text.trim().is_empty() {
            return Err(InvalidSetting::new("offer.text", "must not be empty"));
        }
        Ok(())
    }
}
