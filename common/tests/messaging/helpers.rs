//! Shared setup for the messaging tests: clients with short timeouts, recording handlers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::messaging::{
    AmqpMessaging, Handler, HandlerError, HandlerFn, IncomingMessage, LinkStatus, Messaging,
    MessagingSettings, OutgoingMessage, QueueSpec, QueueType,
};
use tokio::sync::mpsc;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use test_support::{Broker, Cleanup, TcpProxy, amqp_url, unique};

/// How long a test waits for something that should take milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn settings(url: &str) -> MessagingSettings {
    let mut settings = MessagingSettings::new(url, "messaging-test");
    settings.connect_timeout = Duration::from_secs(5);
    settings.attempt_timeout = Duration::from_secs(2);
    settings.reconnect_max_delay = Duration::from_millis(500);
    settings.handler_retry_delay = Duration::from_millis(5);
    settings.close_grace = Duration::from_secs(5);
    settings
}

/// Logs of the test's clients to the test's output: errors, or what `RUST_LOG` asks for.
pub fn init_logging() {
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::ERROR));
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_test_writer())
        .with(filter)
        .try_init();
}

pub async fn client(url: &str) -> AmqpMessaging {
    init_logging();
    AmqpMessaging::connect(settings(url))
        .await
        .expect("connects to the test broker")
}

/// Awaits `future`, panicking after `PATIENCE`: a test fails rather than hangs.
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {PATIENCE:?} waiting until {what}"))
}

/// Waits until `client`'s link status satisfies `check`.
pub async fn status_until(
    client: &impl Messaging,
    what: &str,
    check: impl FnMut(&LinkStatus) -> bool,
) {
    let mut status = client.status();
    within(what, status.wait_for(check))
        .await
        .expect("the client's status is still published");
}

/// Cuts the proxy's connections and refuses new ones; returns once `client` noticed.
pub async fn cut(proxy: &TcpProxy, client: &impl Messaging) {
    let mut status = client.status();
    proxy.refuse(true);
    proxy.cut();
    within(
        "the client notices the cut",
        status.wait_for(|s| *s == LinkStatus::Reconnecting),
    )
    .await
    .expect("the client's status is still published");
}

/// A JSON message of no particular type.
pub fn message(body: &serde_json::Value) -> OutgoingMessage {
    OutgoingMessage::json("test", body).expect("a JSON value encodes")
}

/// A quorum work queue of the test's own, deleted with its dead-letter queue and exchange
/// when `cleanup` drops.
pub fn work_queue(cleanup: &Cleanup, prefix: &str) -> QueueSpec {
    QueueSpec::work_queue(cleanup.work_queue(unique(prefix)), QueueType::Quorum)
}

/// A handler that forwards every message it gets to a channel and succeeds.
pub fn recorder() -> (Arc<dyn Handler>, mpsc::UnboundedReceiver<IncomingMessage>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = HandlerFn(move |message: IncomingMessage| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(message);
            Ok::<(), HandlerError>(())
        }
    });
    (Arc::new(handler), rx)
}

/// Receives `count` messages (or whatever a handler sends) or panics after `PATIENCE`.
pub async fn receive<T>(rx: &mut mpsc::UnboundedReceiver<T>, count: usize) -> Vec<T> {
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        match tokio::time::timeout(PATIENCE, rx.recv()).await {
            Ok(Some(message)) => got.push(message),
            _ => panic!("received {} of {count} messages", got.len()),
        }
    }
    got
}

/// Counts calls per message body, for handlers that fail on purpose.
#[derive(Default, Clone)]
pub struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    pub fn record(&self, body: &str) {
        self.0.lock().expect("calls").push(body.to_owned());
    }

    pub fn count(&self, body: &str) -> usize {
        self.0
            .lock()
            .expect("calls")
            .iter()
            .filter(|b| *b == body)
            .count()
    }
}

/// Asserts that no message of `queue` (a quorum queue) is left unacked, once its consumers are
/// closed: when the queue no longer counts a consumer, what that consumer had not acked is
/// ready again.
pub async fn assert_all_acked(broker: &Broker, queue: &str) {
    broker
        .wait_until("the consumers are gone", PATIENCE, || async {
            broker.consumer_count(queue).await == 0
        })
        .await;
    assert_eq!(
        broker.queue_depth(queue).await,
        Some(0),
        "messages of {queue} were not acked"
    );
}
