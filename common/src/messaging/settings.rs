//! How the messaging client behaves: every bound it applies is a setting with a default that
//! suits a service on a LAN broker.

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::SecretUrl;

/// Messaging settings. `url` is the only one without a sensible default.
#[derive(Debug, Clone)]
pub struct MessagingSettings {
    /// `amqp://user:password@host:port/vhost`, or a cluster's nodes as a comma-separated list
    /// of such URLs (each connection attempt tries them in a random order); `?heartbeat=N` is
    /// honoured, else 2 s is used so a silent peer is noticed within about 5 s.
    pub url: SecretUrl,
    /// A file holding the password for every URL of `url` (which may then carry none), read
    /// again at each connection attempt so that a rotated password (a new Swarm secret) is
    /// used from the next reconnection on. Its trailing newline is ignored.
    pub password_file: Option<PathBuf>,
    /// Stamped on every published message as `app_id`, e.g. `accountservice`.
    pub app_id: String,
    /// Shown in the broker's management UI: `{app_id}@{hostname}`.
    pub connection_name: String,
    /// Unacked deliveries per consumer; also how many handlers run at once per consumer.
    pub prefetch: u16,
    /// How long the first connection may take, retries included (a Swarm service may start
    /// before its broker).
    pub connect_timeout: Duration,
    /// One connection attempt (TCP + AMQP handshake), which lapin does not bound by itself.
    pub attempt_timeout: Duration,
    /// Delay bounds between reconnection attempts (exponential, with jitter).
    pub reconnect_min_delay: Duration,
    pub reconnect_max_delay: Duration,
    /// How long a publish waits for the broker's confirm.
    pub confirm_timeout: Duration,
    /// How long a publish issued during an outage (or a broker alarm) waits for the broker
    /// before failing with [`MessagingError::Unavailable`](super::MessagingError::Unavailable).
    pub outage_wait: Duration,
    /// How many times a handler's transient failure is retried before the message is
    /// dead-lettered.
    pub handler_retries: usize,
    /// First delay between handler retries (doubling).
    pub handler_retry_delay: Duration,
    /// Deliveries of one message (redeliveries after crashes included) before a quorum queue
    /// dead-letters it.
    pub delivery_limit: u32,
    /// How long `close` waits for in-flight handlers and publishes.
    pub close_grace: Duration,
}

impl MessagingSettings {
    pub fn new(url: impl Into<SecretUrl>, app_id: impl Into<String>) -> Self {
        let app_id = app_id.into();
        Self {
            url: url.into(),
            password_file: None,
            connection_name: format!("{app_id}@{}", hostname()),
            app_id,
            prefetch: 200,
            connect_timeout: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(10),
            reconnect_min_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(5),
            confirm_timeout: Duration::from_secs(10),
            outage_wait: Duration::from_secs(5),
            handler_retries: 3,
            handler_retry_delay: Duration::from_millis(100),
            delivery_limit: 20,
            close_grace: Duration::from_secs(10),
        }
    }
}

/// This machine's name (the container id under Docker), for naming the connection.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
