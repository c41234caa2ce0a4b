//! vipservice's own settings, read next to the common ones from the same config files.

use std::path::PathBuf;
use std::time::Duration;

use common::redact::redact_url;

use common::config::{InvalidSetting, Settings};
use serde::{Deserialize, Serialize};

use crate::offers::OfferRule;

/// The keys only vipservice reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VipSettings {
    /// The work queue notifications arrive on (tests use their own).
    pub vip_queue: String,
    pub offers: DatabaseSettings,
    pub offer: OfferSettings,
}

impl Default for VipSettings {
    fn default() -> Self {
        Self {
            vip_queue: common::notification::VIP_QUEUE.to_owned(),
            offers: DatabaseSettings::default(),
            offer: OfferSettings::default(),
        }
    }
}

/// The offers database that every replica shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite://PATH?mode=rwc` (the file and its folder are created; every replica on the
    /// host opens the same file) or `postgres://USER@HOST:PORT/DB` (replicas on several
    /// hosts). Printed with its password redacted.
    pub database_url: String,
    /// A file holding the password of a `postgres://` URL (a Swarm secret), so that the URL
    /// in the settings carries none. Its trailing newline is ignored.
    pub database_password_file: Option<PathBuf>,
    /// Connections this replica opens at most: one writes, the others serve `/offers`.
    pub max_connections: u32,
    /// How long a processed message id is remembered (and a redelivery of it recognised).
    pub processed_retention_days: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://data/vipservice.db?mode=rwc".into(),
            database_password_file: None,
            max_connections: 4,
            processed_retention_days: 7,
        }
    }
}

impl DatabaseSettings {
    /// The URL to connect with: the password file's content put into it, if one is set.
    pub fn url_with_password(&self) -> Result<String, crate::offers::OfferError> {
        use crate::offers::OfferError;
        let Some(path) = &self.database_password_file else {
            return Ok(self.database_url.clone());
        };
        let password =
            std::fs::read_to_string(path).map_err(|source| OfferError::PasswordFile {
                path: path.clone(),
                source,
            })?;
        let invalid = |reason: &str| OfferError::Url {
            url: redact_url(&self.database_url),
            source: sqlx::Error::Configuration(reason.into()),
        };
        let mut url = url::Url::parse(&self.database_url)
            .map_err(|_| invalid("not a URL to put the password file's password into"))?;
        url.set_password(Some(password.trim_end_matches(['\r', '\n'])))
            .map_err(|()| invalid("this URL cannot carry a password"))?;
        Ok(url.into())
    }

    /// How long processed message ids are kept.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.processed_retention_days) * 24 * 3600)
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
    const RESTART_KEYS: &'static [&'static str] = &["offers", "vip_queue"];

    fn validate(&self) -> Result<(), InvalidSetting> {
        if self.vip_queue.is_empty() {
            return Err(InvalidSetting::new("vip_queue", "must not be empty"));
        }
        let url = &self.offers.database_url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(InvalidSetting::new(
                "offers.database_url",
                format!(
                    "must be a sqlite: or postgres:// URL, not {:?}",
                    redact_url(url)
                ),
            ));
        }
        if self.offers.processed_retention_days == 0 {
            return Err(InvalidSetting::new(
                "offers.processed_retention_days",
                "must be at least 1",
            ));
        }
        if self.offer.text.trim().is_empty() {
            return Err(InvalidSetting::new("offer.text", "must not be empty"));
        }
        Ok(())
    }
}
