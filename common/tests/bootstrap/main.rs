//! The shared bootstrap end to end on the real broker: a service instance started in the test
//! follows Spring Cloud Bus refresh events meant for it, ignores the others, and acks; it warns
//! about an unknown key once.

mod go_bus;
mod http;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::bootstrap::{Launch, Service, ServiceSettings};
use common::config::{ConfigArgs, EnvVars, RefreshEvent, Refreshable, Settings};
use common::messaging::{
    ExchangeSpec, HandlerError, HandlerFn, IncomingMessage, Messaging, OutgoingMessage,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use test_support::{Cleanup, amqp_url, unique};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};

/// The test service's own settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Own {
    #[serde(default)]
    greeting: String,
}

impl Settings for Own {}

/// The file of the `it` profile the test service starts with.
fn config_file(dir: &Path) -> PathBuf {
    dir.join("testsvc-it.yml")
}

fn write_config(dir: &Path, server_name: &str) {
    write_config_with(dir, server_name, "");
}

fn write_config_with(dir: &Path, server_name: &str, extra: &str) {
    let yaml = format!(
        "server_port: 0\nserver_name: {server_name}\namqp_server_url: {}\n{extra}",
        amqp_url()
    );
    std::fs::write(config_file(dir), yaml).expect("config file written");
}

struct Running {
    settings: Arc<Refreshable<ServiceSettings<Own>>>,
    base: String,
    stop: oneshot::Sender<()>,
    stopped: tokio::task::JoinHandle<()>,
}

/// The test service on `config_repo`, profile `it`, with these `GOBLOG_*` variables.
fn launch(config_repo: &Path, env: &[(&str, &str)]) -> Launch {
    Launch {
        application: "testsvc",
        version: "9.9.9",
        config: ConfigArgs {
            config_server_url: None,
            profile: "it".into(),
            config_branch: "master".into(),
            config_repo: config_repo.to_owned(),
        },
        env: EnvVars::from_pairs(
            env.iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned())),
        ),
    }
}

async fn start(config_repo: &Path, bus: &str) -> Running {
    let launch = launch(config_repo, &[("GOBLOG_CONFIG_EVENT_BUS", bus)]);
    let mut service = Service::<Own>::start(launch).await.expect("service starts");
    let settings = service.settings();
    let base = format!("http://{}", service.local_addr());
    let (stop, stopping) = oneshot::channel::<()>();
    let stopped = tokio::spawn(async move {
        service
            .serve(axum::Router::new(), async {
                let _ = stopping.await;
            })
            .await
            .expect("serves");
        service.close().await.expect("closes");
    });
    Running {
        settings,
        base,
        stop,
        stopped,
    }
}

/// A client of the bus exchange `bus_name`, and the acks it sees.
async fn bus_client(
    bus_name: &str,
) -> (
    common::messaging::AmqpMessaging,
    ExchangeSpec,
    mpsc::UnboundedReceiver<Value>,
) {
    let client = common::messaging::AmqpMessaging::connect(
        common::messaging::MessagingSettings::new(amqp_url(), "bus-test"),
    )
    .await
    .expect("test client");
    let bus = ExchangeSpec::topic(bus_name);
    let acks = watch_acks(&client, &bus).await;
    (client, bus, acks)
}

/// Records the acks seen on the bus by the events they acknowledge.
async fn watch_acks(
    messaging: &common::messaging::AmqpMessaging,
    bus: &ExchangeSpec,
) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = HandlerFn(move |message: IncomingMessage| {
        let tx = tx.clone();
        async move {
            if let Ok(event) = message.json::<Value>()
                && event["type"] == "AckRemoteApplicationEvent"
            {
                let _ = tx.send(event);
            }
            Ok::<(), HandlerError>(())
        }
    });
    messaging
        .subscribe(bus, "#", "acks", Arc::new(handler))
        .await
        .expect("subscribes to the bus");
    rx
}

async fn ack_of(acks: &mut mpsc::UnboundedReceiver<Value>, event_id: &str) -> Value {
    loop {
        let ack = timeout(Duration::from_secs(10), acks.recv())
            .await
            .expect("an ack arrives")
            .expect("open");
        if ack["ackId"] == event_id {
            return ack;
        }
    }
}

async fn info(base: &str) -> Value {
    reqwest::get(format!("{base}/info"))
        .await
        .expect("GET /info")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn a_refresh_for_this_service_reloads_it_a_lookalike_does_not_and_both_are_handled_in_order()
{
    // First, so that it is dropped last: the bus exchange goes, passed or failed.
    let cleanup = Cleanup::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let bus_name = cleanup.exchange(unique("springCloudBus"));
    write_config(dir.path(), "before");
    let running = start(dir.path(), &bus_name).await;
    let first = info(&running.base).await;
    assert_eq!(first["server_name"], "before");
    assert_eq!(first["application"], "testsvc");
    assert_eq!(first["build"]["version"], "9.9.9");
    assert!(
        first["busId"]
            .as_str()
            .is_some_and(|id| id.starts_with("testsvc:it:")),
        "{first}"
    );

    let (client, bus, mut acks) = bus_client(&bus_name).await;

    // A refresh for testsvc: the new server_name shows on /info within 2 s, and it is acked.
    write_config(dir.path(), "after");
    let refresh = RefreshEvent::new("test:0:x", Some("testsvc:**"));
    let sent = Instant::now();
    let message = OutgoingMessage::json("RefreshRemoteApplicationEvent", &refresh).expect("json");
    client
        .publish(&bus, &bus_name, message)
        .await
        .expect("published");
    loop {
        if info(&running.base).await["server_name"] == "after" {
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "not reloaded within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ack = ack_of(&mut acks, &refresh.id).await;
    assert!(
        ack["originService"]
            .as_str()
            .is_some_and(|o| o.starts_with("testsvc:it:")),
        "{ack}"
    );

    // A lookalike destination, then an environment change for testsvc: the bus is handled in
    // order, so once the second is acked the first was seen and ignored.
    write_config(dir.path(), "lookalike");
    let lookalike = RefreshEvent::new("test:0:x", Some("xtestsvc:**"));
    let message = OutgoingMessage::json("RefreshRemoteApplicationEvent", &lookalike).expect("json");
    client
        .publish(&bus, &bus_name, message)
        .await
        .expect("published");
    let change_id = uuid::Uuid::new_v4().to_string();
    let change = json!({
        "type": "EnvironmentChangeRemoteApplicationEvent",
        "timestamp": 1_732_442_400_200_i64,
        "originService": "test:0:x",
        "destinationService": "testsvc:**",
        "id": change_id,
        "values": {"greeting": "hello"}
    });
    let message =
        OutgoingMessage::json("EnvironmentChangeRemoteApplicationEvent", &change).expect("json");
    client
        .publish(&bus, &bus_name, message)
        .await
        .expect("published");
    ack_of(&mut acks, &change_id).await;
    let now = running.settings.current();
    assert_eq!(now.settings.own.greeting, "hello");
    assert_eq!(
        now.settings.core.server_name, "after",
        "the lookalike was ignored"
    );
    while let Ok(ack) = acks.try_recv() {
        assert_ne!(
            ack["ackId"],
            lookalike.id.as_str(),
            "the lookalike was acked"
        );
    }

    running.stop.send(()).expect("service running");
    running.stopped.await.expect("service task");
    client.close().await.expect("closes");
}

/// What a test's own `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The unknown-setting warnings so far, each from its message on.
    fn unknown_settings(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned();
        text.lines()
            .filter_map(|line| line.find("unknown setting").map(|at| line[at..].to_owned()))
            .collect()
    }
}

async fn refresh_and_wait(
    client: &common::messaging::AmqpMessaging,
    bus: &ExchangeSpec,
    acks: &mut mpsc::UnboundedReceiver<Value>,
) {
    let refresh = RefreshEvent::new("test:0:x", Some("testsvc:**"));
    let message = OutgoingMessage::json("RefreshRemoteApplicationEvent", &refresh).expect("json");
    client
        .publish(bus, &bus.name, message)
        .await
        .expect("published");
    ack_of(acks, &refresh.id).await;
}

#[tokio::test]
async fn an_unknown_key_is_warned_about_once_and_a_refresh_warns_only_about_new_ones() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    // The test runs on one thread, the service's tasks included: they all log here.
    let _logging = tracing::subscriber::set_default(subscriber);
    // First, so that it is dropped last: the bus exchange goes, passed or failed.
    let cleanup = Cleanup::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let bus_name = cleanup.exchange(unique("springCloudBus"));
    write_config_with(dir.path(), "typo", "vip_acount_ids: ['1']\n");
    let running = start(dir.path(), &bus_name).await;
    let file = config_file(dir.path()).display().to_string();
    let first = format!(
        "unknown setting \"vip_acount_ids\" in {file}: no setting has this name; it is ignored"
    );
    assert_eq!(captured.unknown_settings(), std::slice::from_ref(&first));

    let (client, bus, mut acks) = bus_client(&bus_name).await;

    // The handler warns before it acks: once the ack is in, any warning would be too.
    refresh_and_wait(&client, &bus, &mut acks).await;
    assert_eq!(captured.unknown_settings(), std::slice::from_ref(&first));

    write_config_with(dir.path(), "typo", "vip_acount_ids: ['1']\ngreting: hi\n");
    refresh_and_wait(&client, &bus, &mut acks).await;
    assert_eq!(
        captured.unknown_settings(),
        [
            first,
            format!("unknown setting \"greting\" in {file}: did you mean \"greeting\"?")
        ]
    );

    running.stop.send(()).expect("service running");
    running.stopped.await.expect("service task");
    client.close().await.expect("closes");
}

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn a_port_in_use_is_an_error_naming_the_setting() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_config(dir.path(), "busy");
    let taken = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = taken.local_addr().expect("address").port().to_string();

    let error = Service::<Own>::start(launch(dir.path(), &[("GOBLOG_SERVER_PORT", &port)]))
        .await
        .err()
        .expect("the port is taken");
    let message = error.to_string();
    assert!(
        matches!(error, common::bootstrap::BootstrapError::Bind { .. }),
        "{message}"
    );
    assert!(
        message.contains(&format!(":{port}")) && message.contains("`server_port`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_broker_that_does_not_answer_is_an_error_naming_the_settings() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_config(dir.path(), "no broker");
    let url = format!("amqp://guest:hunter2@127.0.0.1:{}/%2f", closed_port());

    let error = Service::<Own>::start(launch(
        dir.path(),
        &[
            ("GOBLOG_AMQP_SERVER_URL", &url),
            ("GOBLOG_AMQP__CONNECT_TIMEOUT_MS", "200"),
        ],
    ))
    .await
    .err()
    .expect("no broker");
    let message = error.to_string();
    assert!(
        message.contains("`amqp_server_url`") && message.contains("`amqp.connect_timeout_ms`"),
        "{message}"
    );
    let cause = std::error::Error::source(&error)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(cause.contains("guest:***@127.0.0.1"), "{cause}");
    assert!(!format!("{message} {cause}").contains("hunter2"), "{cause}");
}
