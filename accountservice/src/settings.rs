//! accountservice's own settings, read from the same config files as the common keys.

use std::path::PathBuf;
use std::time::Duration;

use common::config::{InvalidSetting, Settings};
use common::database::{DatabaseRole, DatabaseSettings};
use common::notification::{VIP_QUEUE, is_valid_account_id};
use serde::{Deserialize, Serialize};

use crate::quotes::QuotesSettings;

/// The keys of `accountservice.yml` beyond the common ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountSettings {
    /// Accounts whose reads are announced on [`Self::vip_queue`]; refreshable.
    pub vip_account_ids: Vec<String>,
    /// The queue VIP notifications go to. Fixed by the protocol in production; a setting so
    /// tests can use a queue of their own.
    pub vip_queue: String,
    pub quotes: QuotesSettings,
    pub store: StoreSettings,
    /// The outbox's database; in Swarm the stack's PostgreSQL, so it outlives a task.
    pub outbox: OutboxDatabaseSettings,
    pub notifications: NotificationSettings,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            vip_account_ids: vec!["10000".to_owned()],
            vip_queue: VIP_QUEUE.to_owned(),
            quotes: QuotesSettings::default(),
            store: StoreSettings::default(),
            outbox: OutboxDatabaseSettings::default(),
            notifications: NotificationSettings::default(),
        }
    }
}

impl AccountSettings {
    /// Whether reading `account_id` must be announced.
    pub fn is_vip(&self, account_id: &str) -> bool {
        self.vip_account_ids.iter().any(|id| id == account_id)
    }
}

impl Settings for AccountSettings {
    /// The store and the outbox are opened, the quotes client built and the relay sized once,
    /// at start.
    const RESTART_KEYS: &'static [&'static str] =
        &["store", "outbox", "quotes", "vip_queue", "notifications"];

    fn validate(&self) -> Result<(), InvalidSetting> {
        if let Some(bad) = self
            .vip_account_ids
            .iter()
            .find(|id| !is_valid_account_id(id))
        {
            return Err(InvalidSetting::new(
                "vip_account_ids",
                format!("{bad:?} is not 1 to 64 characters of [A-Za-z0-9_-]"),
            ));
        }
        if self.vip_queue.is_empty() {
            return Err(InvalidSetting::new("vip_queue", "must not be empty"));
        }
        self.outbox.validate()?;
        if self.notifications.max_in_flight == 0 {
            return Err(InvalidSetting::new(
                "notifications.max_in_flight",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The outbox database: the section `outbox`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxDatabase;

impl DatabaseRole for OutboxDatabase {
    const SETTING: &'static str = "outbox";
    const DEFAULT_URL: &'static str = "sqlite://data/accountservice-outbox.db?mode=rwc";
    /// One writes; the relay claims, `/health` counts.
    const DEFAULT_MAX_CONNECTIONS: u32 = 4;
}

pub type OutboxDatabaseSettings = DatabaseSettings<OutboxDatabase>;

/// Where the embedded account store lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreSettings {
    pub path: PathBuf,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/accountservice.redb"),
        }
    }
}

/// How VIP notifications are published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NotificationSettings {
    /// Publishes under way at once; past this, notifications wait in the outbox's table, not
    /// in memory. 256 awaiting a confirm of a few ms is more than the broker takes per second
    /// on this machine kind; each one more in flight is memory (its message, its frames).
    pub max_in_flight: usize,
    /// How long one publish may take before it counts as failed (its notification stays in
    /// the outbox and is published again). A replica's lease on the entries it publishes is
    /// twice this.
    pub publish_timeout_ms: u64,
    /// How long shutdown waits for the publishes under way; what is unconfirmed then stays in
    /// the outbox for the next relay.
    pub shutdown_grace_ms: u64,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            publish_timeout_ms: 3_000,
            shutdown_grace_ms: 3_000,
        }
    }
}

impl NotificationSettings {
    pub fn publish_timeout(&self) -> Duration {
        Duration::from_millis(self.publish_timeout_ms)
    }

    /// How long the entries this replica publishes stay its own before any relay may claim
    /// them.
    pub fn lease(&self) -> Duration {
        self.publish_timeout().saturating_mul(2)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_make_account_10000_vip_on_the_protocol_queue() {
        let settings: AccountSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, AccountSettings::default());
        assert!(settings.is_vip("10000"));
        assert!(!settings.is_vip("10001"));
        assert_eq!(settings.vip_queue, "vip_queue");
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn malformed_vip_ids_and_a_zero_bound_are_refused() {
        let bad_id = AccountSettings {
            vip_account_ids: vec!["10 000".into()],
            ..AccountSettings::default()
        };
        assert_eq!(bad_id.validate().unwrap_err().key, "vip_account_ids");
        let mut no_bound = AccountSettings::default();
        no_bound.notifications.max_in_flight = 0;
        assert_eq!(
            no_bound.validate().unwrap_err().key,
            "notifications.max_in_flight"
        );
    }
}
