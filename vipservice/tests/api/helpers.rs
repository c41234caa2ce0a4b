//! Starting vipservice processes and talking to them.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta};
use common::config::RefreshEvent;
use common::contract::vipservice::{DEAD_LETTERED, OFFERS_MADE};
use common::messaging::{
    AmqpMessaging, ExchangeSpec, Messaging, MessagingSettings, OutgoingMessage, QueueSpec,
    QueueType,
};
use common::notification::{MESSAGE_TYPE, VipNotification};
use serde_json::Value;
use test_support::{Broker, Cleanup, TestDatabase, amqp_url, unique};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};
use vipservice::offers::{Offer, OfferDb};
use vipservice::settings::OffersDatabaseSettings;

/// How long anything a test waits for may take.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The fixture `name` of `common/tests/fixtures/vip-notifications/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../common/tests/fixtures/vip-notifications")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A queue, a config bus and an offers database of one test's own, and a config repo in a
/// temp dir. What it declares on the broker is deleted when it drops, also when the test fails.
pub struct Setup {
    pub broker: Broker,
    pub queue: String,
    bus: String,
    dir: tempfile::TempDir,
    pub database: TestDatabase,
    /// The URL the instances use: the database's own, or one through a proxy.
    database_url: String,
    /// Settings every instance gets on top of the config repo's, as environment variables.
    env: Vec<(String, String)>,
    _cleanup: Cleanup,
}

impl Setup {
    /// With a SQLite file that every instance opens.
    pub async fn new() -> Self {
        Self::with(TestDatabase::sqlite()).await
    }

    /// With a PostgreSQL database of its own.
    pub async fn postgres() -> Self {
        Self::with(TestDatabase::postgres().await).await
    }

    async fn with(database: TestDatabase) -> Self {
        let cleanup = Cleanup::new();
        let queue = cleanup.work_queue(unique("vip_queue"));
        let setup = Self {
            broker: Broker::connect().await,
            queue,
            bus: cleanup.exchange(unique("springCloudBus")),
            dir: tempfile::tempdir().expect("temp dir"),
            database_url: database.url().to_owned(),
            database,
            env: Vec::new(),
            _cleanup: cleanup,
        };
        setup.write_config("");
        setup
    }

    /// Writes the config repo's `vipservice-it.yml`: what every instance needs, plus `extra`.
    fn write_config(&self, extra: &str) {
        let yaml = format!(
            "server_port: 0\nserver_name: vip-it\namqp_server_url: {}\n{extra}",
            amqp_url()
        );
        std::fs::write(self.dir.path().join("vipservice-it.yml"), yaml).expect("config written");
    }

    /// Changes the config repo to `extra` and asks every instance to reload, as a config
    /// server's `/actuator/busrefresh` would.
    pub async fn refresh(&self, extra: &str) {
        self.write_config(extra);
        let messaging = AmqpMessaging::connect(MessagingSettings::new(amqp_url(), "vip-it"))
            .await
            .expect("bus client connects");
        let event = RefreshEvent::new("vip-it:test:0", Some("vipservice:**"));
        let message =
            OutgoingMessage::json("RefreshRemoteApplicationEvent", &event).expect("encodes");
        messaging
            .publish(&ExchangeSpec::topic(&self.bus), &self.bus, message)
            .await
            .expect("refresh published");
        messaging.close().await.expect("bus client closes");
    }

    /// Instances started from now on get the setting `key` (`GOBLOG_…`) = `value`.
    pub fn use_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts an instance that must fail to start; its exit status and everything it logged.
    pub async fn spawn_failing(&self) -> (std::process::ExitStatus, String) {
        let output = timeout(LIMIT, self.command(1).output())
            .await
            .expect("vipservice gives up in time")
            .expect("vipservice runs");
        let mut log = String::from_utf8_lossy(&output.stdout).into_owned();
        log.push_str(&String::from_utf8_lossy(&output.stderr));
        (output.status, log)
    }

    fn command(&self, prefetch: u16) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vipservice"));
        command
            .arg("--config-repo")
            .arg(self.dir.path())
            .args(["--profile", "it"])
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("GOBLOG_VIP_QUEUE", &self.queue)
            .env("GOBLOG_CONFIG_EVENT_BUS", &self.bus)
            .env("GOBLOG_OFFERS__DATABASE_URL", &self.database_url)
            .env("GOBLOG_AMQP__PREFETCH", prefetch.to_string())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        command
    }

    /// Instances started from now on reach the database at `url` (e.g. through a proxy).
    pub fn use_database_url(&mut self, url: String) {
        self.database_url = url;
    }

    /// The offers in the database, read the way the instances reach it.
    pub async fn offers(&self, account_id: &str) -> Vec<Offer> {
        let settings = OffersDatabaseSettings::at(&self.database_url);
        let db = OfferDb::connect(&settings)
            .await
            .expect("the test reaches the database");
        let offers = db
            .offers_for(account_id, u32::MAX)
            .await
            .expect("offers read");
        db.close().await;
        offers
    }

    /// Starts instance `name` with `prefetch`, and waits until it consumes.
    pub async fn spawn(&self, prefetch: u16) -> Vip {
        let mut child = self
            .command(prefetch)
            .stdout(Stdio::piped())
            .spawn()
            .expect("vipservice starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let log = Arc::new(Mutex::new(Log::default()));
        let (port_tx, port_rx) = oneshot::channel();
        let reader = tokio::spawn(read_log(stdout, log.clone(), port_tx));
        let port = timeout(LIMIT, port_rx)
            .await
            .expect("vipservice reports its port")
            .expect("vipservice logs 'started' with its port");
        let vip = Vip {
            child,
            reader,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            log,
        };
        vip.wait_healthy(true).await;
        vip
    }

    /// Publishes `count` valid notifications for `account_id` with ids `{prefix}-{i}`, the way
    /// accountservice does (declaring the queue and its DLQ if no instance did yet).
    pub async fn publish_many(&self, prefix: &str, account_id: &str, count: usize) -> Vec<String> {
        let publisher = AmqpMessaging::connect(MessagingSettings::new(amqp_url(), "vip-it"))
            .await
            .expect("publisher connects");
        let queue = QueueSpec::work_queue(&self.queue, QueueType::Quorum);
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let id = format!("{prefix}-{i}");
            let notification = VipNotification {
                account_id: account_id.to_owned(),
                read_at: DateTime::UNIX_EPOCH + TimeDelta::milliseconds(i as i64),
            };
            let message = OutgoingMessage::json(MESSAGE_TYPE, &notification)
                .expect("encodes")
                .with_message_id(&id);
            publisher
                .publish_on_queue(&queue, message)
                .await
                .expect("published");
            ids.push(id);
        }
        publisher.close().await.expect("publisher closes");
        ids
    }

    /// Waits until the queue has no message ready.
    pub async fn wait_drained(&self) {
        self.broker
            .wait_until("the queue is drained", LIMIT, || async {
                self.broker.queue_depth(&self.queue).await == Some(0)
            })
            .await;
    }

    /// Waits until `vip`, back from a database outage, is healthy and has drained the queue
    /// into `offers` offers in all, with nothing dead-lettered.
    pub async fn wait_recovered(&self, vip: &Vip, offers: usize) {
        vip.wait_healthy(true).await;
        self.wait_drained().await;
        vip.wait_metric(OFFERS_MADE, offers as u64).await;
        assert_eq!(vip.metric(DEAD_LETTERED).await, 0);
        let dlq = format!("{}.dlq", self.queue);
        assert_eq!(self.broker.queue_depth(&dlq).await.unwrap_or(0), 0);
    }

    /// Deletes what the test declared (the guard does, as it drops).
    pub async fn cleanup(self) {
        drop(self);
    }
}

/// What a test reads from an instance's log.
#[derive(Default)]
pub struct Log {
    /// `message_id` of every "Got a message" line, in order.
    pub got: Vec<String>,
    /// Those of them delivered before to a consumer that did not ack.
    pub redelivered: HashSet<String>,
    /// The last lines, for a failure's message.
    pub tail: VecDeque<String>,
}

/// How many of the last log lines [`Log::tail`] keeps.
const TAIL: usize = 30;

async fn read_log(
    stdout: tokio::process::ChildStdout,
    log: Arc<Mutex<Log>>,
    port: oneshot::Sender<u16>,
) {
    let mut port = Some(port);
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        {
            let mut log = log.lock().expect("log lock");
            if log.tail.len() == TAIL {
                log.tail.pop_front();
            }
            log.tail.push_back(line.clone());
        }
        let message = event["message"].as_str().unwrap_or_default();
        if message == "started"
            && let Some(found) = event["port"].as_u64().and_then(|p| u16::try_from(p).ok())
            && let Some(port) = port.take()
        {
            let _ = port.send(found);
        }
        if message.starts_with("Got a message: ")
            && let Some(id) = event["message_id"].as_str()
        {
            let mut log = log.lock().expect("log lock");
            if event["redelivered"] == true {
                log.redelivered.insert(id.to_owned());
            }
            log.got.push(id.to_owned());
        }
    }
}

/// A running vipservice process.
pub struct Vip {
    child: Child,
    /// Reads the log until the process closes its stdout.
    reader: tokio::task::JoinHandle<()>,
    pub base: String,
    http: reqwest::Client,
    pub log: Arc<Mutex<Log>>,
}

impl Vip {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("vipservice answers")
    }

    pub async fn health(&self) -> (u16, Value) {
        let response = self.get("/health").await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON health"))
    }

    /// Polls `/health` until it says `healthy` (200) or not (503).
    pub async fn wait_healthy(&self, healthy: bool) {
        let want = if healthy { 200 } else { 503 };
        let deadline = Instant::now() + LIMIT;
        loop {
            let (status, body) = self.health().await;
            if status == want {
                return;
            }
            assert!(Instant::now() < deadline, "/health stayed {status}: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Messages this instance logged as received.
    pub fn got(&self) -> usize {
        self.log.lock().expect("log lock").got.len()
    }

    /// The value of the metric `name` (a counter) on `/metrics`, 0 while it is absent.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self
            .get("/metrics")
            .await
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Polls the counter `name` until it reaches `value`.
    pub async fn wait_metric(&self, name: &str, value: u64) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let now = self.metric(name).await;
            if now >= value {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} stayed {now}, want {value}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops it with SIGTERM, as Swarm does, and checks that it exits cleanly.
    pub async fn terminate(mut self) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let exit = timeout(LIMIT, self.child.wait()).await;
        let tail = || Vec::from(self.log.lock().expect("log lock").tail.clone()).join("\n");
        let Ok(exit) = exit else {
            panic!(
                "vipservice did not stop after SIGTERM; its log ends with:\n{}",
                tail()
            );
        };
        let exit = exit.expect("exit status");
        assert!(
            exit.success(),
            "vipservice exited with {exit}; its log ends with:\n{}",
            tail()
        );
    }

    /// Kills it with SIGKILL: no shutdown, unacked deliveries go back to the queue. Returns
    /// once its whole log is read.
    pub async fn kill(mut self) -> Log {
        self.child.kill().await.expect("SIGKILL");
        timeout(LIMIT, self.reader)
            .await
            .expect("the log ends")
            .expect("the log reader");
        std::mem::take(&mut *self.log.lock().expect("log lock"))
    }
}
