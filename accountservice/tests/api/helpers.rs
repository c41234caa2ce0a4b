//! `spawn_app()` and a [`TestApp`] with one method per endpoint, over the same
//! `Application::build` that `main` uses.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use accountservice::app::{AppError, Application};
use common::bootstrap::Launch;
use common::config::{ConfigArgs, EnvVars, RefreshEvent};
use common::messaging::{
    AmqpMessaging, ExchangeSpec, Messaging, MessagingSettings, OutgoingMessage, QueueSpec,
    QueueType,
};
use serde_json::Value;
use tempfile::TempDir;
use test_support::{Broker, Cleanup, Message, TcpProxy, amqp_url, unique};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// The broker as tests reach it directly.
pub const BROKER: &str = "127.0.0.1:5672";

/// One service instance's configuration, kept across restarts (same store, same queue). Its
/// queue and bus are deleted from the broker when it drops, also when the test fails.
pub struct TestConfig {
    /// Holds the config repo and the store.
    pub dir: Arc<TempDir>,
    pub queue: String,
    pub bus: String,
    pub amqp_url: String,
    pub vip_account_ids: Vec<String>,
    pub quotes_url: String,
    pub outage_wait_ms: u64,
    pub publish_timeout_ms: u64,
    pub shutdown_grace_ms: u64,
    /// The outbox database; `None`: a SQLite file in [`Self::dir`].
    pub outbox_url: Option<String>,
    /// 0: any free port (in-process tests learn it from the service).
    pub server_port: u16,
    /// `amqp.compat`: `none`, or `go-p9` to share the queue with the Go original.
    pub compat: &'static str,
    /// Dropped after the fields above: the service is stopped (or its test failed) by then.
    _cleanup: Cleanup,
}

impl TestConfig {
    pub fn new() -> Self {
        let cleanup = Cleanup::new();
        Self {
            dir: Arc::new(tempfile::tempdir().expect("temp dir")),
            queue: cleanup.work_queue(unique("vip_queue")),
            bus: cleanup.exchange(unique("springCloudBus")),
            amqp_url: amqp_url(),
            vip_account_ids: vec!["10000".into()],
            quotes_url: "http://127.0.0.1:9/api/quote".into(),
            outage_wait_ms: 2_000,
            publish_timeout_ms: 3_000,
            shutdown_grace_ms: 3_000,
            outbox_url: None,
            server_port: 0,
            compat: "none",
            _cleanup: cleanup,
        }
    }

    /// A fresh configuration reaching the broker through a proxy the test can cut.
    pub async fn through_proxy() -> (Self, TcpProxy) {
        let proxy = TcpProxy::start(BROKER.parse().expect("broker address")).await;
        let config = Self {
            amqp_url: proxy.amqp_url(),
            ..Self::new()
        };
        (config, proxy)
    }

    /// Writes `accountservice-it.yml` (its profile is `it`) into the config repo.
    pub fn write(&self) {
        let dir = self.dir.path();
        let vips = serde_json::to_string(&self.vip_account_ids).expect("ids");
        let yaml = format!(
            "server_port: {port}
server_name: accountservice IT
amqp_server_url: {url}
config_event_bus: {bus}
log_level: warn
amqp:
  queue_type: classic
  compat: {compat}
  outage_wait_ms: {outage}
  connect_timeout_ms: 5000
vip_account_ids: {vips}
vip_queue: {queue}
quotes:
  url: {quotes}
  timeout_ms: 100
store:
  path: {store}
outbox:
  database_url: {outbox}
notifications:
  publish_timeout_ms: {publish}
  shutdown_grace_ms: {grace}
",
            port = self.server_port,
            url = self.amqp_url,
            bus = self.bus,
            outage = self.outage_wait_ms,
            compat = self.compat,
            queue = self.queue,
            quotes = self.quotes_url,
            store = dir.join("accounts.redb").display(),
            outbox = self.outbox_url.clone().unwrap_or_else(|| format!(
                "sqlite://{}?mode=rwc",
                dir.join("outbox.db").display()
            )),
            publish = self.publish_timeout_ms,
            grace = self.shutdown_grace_ms,
        );
        std::fs::write(dir.join("accountservice-it.yml"), yaml).expect("config written");
    }

    fn launch(&self, config_repo: &Path) -> Launch {
        Launch {
            application: "accountservice",
            version: "0.0.0-test",
            config: ConfigArgs {
                config_server_url: None,
                profile: "it".into(),
                config_branch: "master".into(),
                config_repo: config_repo.to_owned(),
            },
            env: EnvVars::from_pairs([]),
        }
    }
}

/// A running accountservice.
pub struct TestApp {
    pub base: String,
    pub config: TestConfig,
    pub http: reqwest::Client,
    refreshed: watch::Receiver<u64>,
    stop: oneshot::Sender<()>,
    stopped: JoinHandle<Result<(), AppError>>,
}

/// Starts accountservice with a fresh configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestConfig::new()).await
}

/// Starts accountservice with `config` (written to its config repo first).
pub async fn spawn_app_with(config: TestConfig) -> TestApp {
    config.write();
    let app = Application::build(config.launch(config.dir.path()))
        .await
        .expect("accountservice starts");
    let base = format!("http://{}", app.local_addr());
    let refreshed = app.refreshed();
    let (stop, stopping) = oneshot::channel::<()>();
    let stopped = tokio::spawn(app.run_until_stopped(async {
        let _ = stopping.await;
    }));
    TestApp {
        base,
        config,
        http: reqwest::Client::new(),
        refreshed,
        stop,
        stopped,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_account(&self, id: &str) -> reqwest::Response {
        self.get(&format!("/accounts/{id}")).await
    }

    pub async fn health(&self) -> Value {
        self.get("/health").await.json().await.expect("health JSON")
    }

    /// Stops the service as SIGTERM would, and hands back its configuration for a restart.
    pub async fn stop(self) -> TestConfig {
        let _ = self.stop.send(());
        self.stopped
            .await
            .expect("the service task")
            .expect("a clean stop");
        self.config
    }

    /// Rewrites the config repo with `ids` as VIPs and refreshes through the bus.
    pub async fn refresh_vip_account_ids(&mut self, ids: &[&str]) {
        self.config.vip_account_ids = ids.iter().map(|&id| id.to_owned()).collect();
        self.refresh().await;
    }

    /// Rewrites the config repo from `self.config` and refreshes through the bus, as a config
    /// server's `/actuator/busrefresh` does; returns once the service applied it.
    pub async fn refresh(&mut self) {
        self.config.write();
        let client = AmqpMessaging::connect(MessagingSettings::new(amqp_url(), "it-bus"))
            .await
            .expect("bus client");
        let event = RefreshEvent::new("it:0:x", Some("accountservice:**"));
        let message = OutgoingMessage::json("RefreshRemoteApplicationEvent", &event).expect("JSON");
        self.refreshed.mark_unchanged();
        client
            .publish(
                &ExchangeSpec::topic(&self.config.bus),
                &self.config.bus,
                message,
            )
            .await
            .expect("refresh published");
        tokio::time::timeout(Duration::from_secs(10), self.refreshed.changed())
            .await
            .expect("refreshed within 10 s")
            .expect("service running");
        client.close().await.expect("bus client closed");
    }
}

/// The JSON body of a delivered message.
pub fn body(message: &Message) -> Value {
    serde_json::from_slice(&message.body).expect("JSON body")
}

/// The message ids of `messages`, each once.
pub fn message_ids(messages: &[Message]) -> std::collections::BTreeSet<String> {
    messages
        .iter()
        .filter_map(|m| m.properties.message_id.clone())
        .collect()
}

/// Declares the VIP queue as the service would, from a client of the test's own, and leaves
/// it empty. (A VIP read would do too, but the service might still await that publish's
/// confirm when a test then cuts the broker, and rightly keep a second copy in its outbox.)
pub async fn declare_vip_queue(broker: &Broker, config: &TestConfig) {
    let client = AmqpMessaging::connect(MessagingSettings::new(amqp_url(), "it-setup"))
        .await
        .expect("setup client");
    let queue = QueueSpec::work_queue(&config.queue, QueueType::Classic);
    let message = OutgoingMessage::json("Setup", &serde_json::json!({})).expect("JSON");
    client
        .publish_on_queue(&queue, message)
        .await
        .expect("queue declared");
    client.close().await.expect("setup client closed");
    assert_eq!(broker.drain(&config.queue).await.len(), 1);
}

/// Cuts the service off the broker and waits until it noticed, so no publish slips through
/// while the proxy is still closing connections.
pub async fn cut_broker(broker: &Broker, proxy: &TcpProxy, app: &TestApp) {
    proxy.refuse(true);
    proxy.cut();
    broker
        .wait_until(
            "the service sees the broker gone",
            Duration::from_secs(10),
            || async { app.health().await["broker"] != "connected" },
        )
        .await;
}
