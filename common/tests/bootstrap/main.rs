//! The shared bootstrap end to end on the real broker: a service instance started in the test
//! follows Spring Cloud Bus refresh events meant for it, ignores the others, and acks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::bootstrap::{Launch, Service, ServiceSettings};
use common::config::{ConfigArgs, EnvVars, RefreshEvent, Refreshable, Settings};
use common::messaging::{
    ExchangeSpec, HandlerError, HandlerFn, IncomingMessage, Messaging, OutgoingMessage,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use test_support::{Broker, amqp_url, unique};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout};

/// The test service's own settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Own {
    #[serde(default)]
    greeting: String,
}

impl Settings for Own {}

fn write_config(dir: &Path, server_name: &str) {
    let yaml = format!(
        "server_port: 0\nserver_name: {server_name}\namqp_server_url: {}\n",
        amqp_url()
    );
    std::fs::write(dir.join("testsvc.yml"), yaml).expect("config file written");
}

struct Running {
    settings: Arc<Refreshable<ServiceSettings<Own>>>,
    base: String,
    stop: oneshot::Sender<()>,
    stopped: tokio::task::JoinHandle<()>,
}

async fn start(config_repo: &Path, bus: &str) -> Running {
    let launch = Launch {
        application: "testsvc",
        version: "9.9.9",
        config: ConfigArgs {
            config_server_url: None,
            profile: "it".into(),
            config_branch: "master".into(),
            config_repo: config_repo.to_owned(),
        },
        env: EnvVars::from_pairs([("GOBLOG_CONFIG_EVENT_BUS".to_owned(), bus.to_owned())]),
    };
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
    let broker = Broker::connect().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let bus_name = unique("springCloudBus");
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

    let client = common::messaging::AmqpMessaging::connect(
        common::messaging::MessagingSettings::new(amqp_url(), "bus-test"),
    )
    .await
    .expect("test client");
    let bus = ExchangeSpec::topic(&bus_name);
    let mut acks = watch_acks(&client, &bus).await;

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
    broker.delete(&[], &[&bus_name]).await;
}
