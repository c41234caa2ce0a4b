//! The settings every service has (the keys of the Go original's config files), and how a
//! service's own settings are loaded next to them from the same keys.

use std::path::PathBuf;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::server::HttpTuning;
use crate::config::refresh::is_under;
use crate::config::unknown::{deserialize_noting_ignored, ignored_by_both};
use crate::config::{InvalidSetting, Settings};
use crate::messaging::{Compat, MessagingSettings, QueueSpec, QueueType};
use crate::redact::url_list;
use crate::secret::SecretUrl;
use crate::telemetry::TelemetrySettings;

/// Keys both services read, at the top level as in the original's `accountservice-dev.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoreSettings {
    /// HTTP port (6767 for accountservice, 6868 for vipservice); 0 picks a free one.
    pub server_port: u16,
    /// A name to tell instances and profiles apart, shown by `/info`.
    pub server_name: String,
    /// The broker, `amqp://user:password@host:port/vhost`, or a cluster's nodes as a
    /// comma-separated list of such URLs.
    pub amqp_server_url: SecretUrl,
    /// The Spring Cloud Bus topic exchange that carries refresh events.
    #[serde(default = "default_bus")]
    pub config_event_bus: String,
    /// `trace`, `debug`, `info`, `warn`, `error`, or a `tracing` filter directive.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    #[serde(default)]
    pub amqp: AmqpTuning,
    #[serde(default)]
    pub http: HttpTuning,
    /// Trace export (off unless the environment or this names a collector).
    #[serde(default)]
    pub telemetry: TelemetrySettings,
}

fn default_bus() -> String {
    "springCloudBus".to_owned()
}

fn default_log_level() -> String {
    "info".to_owned()
}

/// How the service uses the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AmqpTuning {
    /// Unacked deliveries per consumer, which is also how many handlers run at once.
    pub prefetch: u16,
    /// Type of the work queues this service declares.
    pub queue_type: QueueType,
    /// `go-p9`: declare the work queues as the Go original does, to share them with its
    /// services while moving off them (see [`Compat::GoP9`] for what that gives up).
    pub compat: Compat,
    /// How long a publish waits for the broker during an outage before it fails.
    pub outage_wait_ms: u64,
    /// How long a publish waits for the broker's confirm.
    pub confirm_timeout_ms: u64,
    /// How long startup waits for the broker.
    pub connect_timeout_ms: u64,
    /// A file holding the password of `amqp_server_url`'s user (a Swarm secret), read at each
    /// connection attempt: the URL then carries none, and a rotated password is picked up by
    /// the next reconnection.
    pub password_file: Option<PathBuf>,
}

impl Default for AmqpTuning {
    fn default() -> Self {
        Self {
            prefetch: 200,
            queue_type: QueueType::Quorum,
            compat: Compat::None,
            outage_wait_ms: 2_000,
            confirm_timeout_ms: 5_000,
            connect_timeout_ms: 60_000,
            password_file: None,
        }
    }
}

impl AmqpTuning {
    /// The work queue `name` as these settings declare it.
    pub fn work_queue(&self, name: &str) -> QueueSpec {
        QueueSpec::work_queue(name, self.queue_type).with_compat(self.compat)
    }
}

impl CoreSettings {
    /// Keys that only a restart applies (the port is bound, the connection is made once).
    const RESTART_KEYS: [&'static str; 6] = [
        "server_port",
        "amqp_server_url",
        "config_event_bus",
        "amqp",
        "http",
        "telemetry",
    ];

    /// The messaging client's settings for `application`.
    pub fn messaging(&self, application: &str) -> MessagingSettings {
        let mut settings = MessagingSettings::new(self.amqp_server_url.clone(), application);
        settings.prefetch = self.amqp.prefetch;
        settings.outage_wait = Duration::from_millis(self.amqp.outage_wait_ms);
        settings.confirm_timeout = Duration::from_millis(self.amqp.confirm_timeout_ms);
        settings.connect_timeout = Duration::from_millis(self.amqp.connect_timeout_ms);
        settings.password_file.clone_from(&self.amqp.password_file);
        settings
    }

    fn validate(&self) -> Result<(), InvalidSetting> {
        let urls = url_list(self.amqp_server_url.expose());
        if !urls
            .iter()
            .all(|url| url.starts_with("amqp://") || url.starts_with("amqps://"))
        {
            return Err(InvalidSetting::new(
                "amqp_server_url",
                "must be an amqp:// or amqps:// URL, or a comma-separated list of them (a \
                 cluster's nodes)",
            ));
        }
        if self.config_event_bus.is_empty() {
            return Err(InvalidSetting::new("config_event_bus", "must not be empty"));
        }
        if self.amqp.prefetch == 0 {
            return Err(InvalidSetting::new("amqp.prefetch", "must be at least 1"));
        }
        self.telemetry
            .check()
            .map_err(|reason| InvalidSetting::new("telemetry.otlp_endpoint", reason))?;
        Ok(())
    }
}

/// A service's settings: the common keys plus its own (`X`), read from the same flat keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSettings<X> {
    #[serde(flatten)]
    pub core: CoreSettings,
    #[serde(flatten)]
    pub own: X,
}

/// Both parts read the whole tree, each taking its keys. (`#[serde(flatten)]` would lose the
/// `config` crate's conversions, e.g. of `GOBLOG_SERVER_PORT=0` from text to a number.)
impl<'de, X: Settings> Deserialize<'de> for ServiceSettings<X> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tree = ::config::Value::deserialize(deserializer)?;
        Self::from_tree(tree)
            .map(|(settings, _)| settings)
            .map_err(D::Error::custom)
    }
}

impl<X: Settings> Settings for ServiceSettings<X> {
    fn needs_restart(key: &str) -> bool {
        CoreSettings::RESTART_KEYS
            .iter()
            .any(|prefix| is_under(key, prefix))
            || X::needs_restart(key)
    }

    fn validate(&self) -> Result<(), InvalidSetting> {
        self.core.validate()?;
        self.own.validate()
    }

    /// A key is unknown when neither the common part nor the service's own part reads it.
    fn from_tree(tree: ::config::Value) -> Result<(Self, Vec<String>), ::config::ConfigError> {
        let (core, core_ignored) = deserialize_noting_ignored::<CoreSettings>(tree.clone())?;
        let (own, own_ignored) = X::from_tree(tree)?;
        let unknown = ignored_by_both(&core_ignored, &own_ignored);
        Ok((Self { core, own }, unknown))
    }
}
