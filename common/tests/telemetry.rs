//! Trace context across the broker, on the real broker, with the SDK's in-memory exporter: a
//! publish made inside a trace carries `traceparent`, and the consumer's `process` span
//! continues it (a child of `send`, with a link to it); a message without one (the Go
//! original's) starts a trace of its own; a config bus refresh event sent inside a trace is
//! applied, and acked, inside it. Its own test binary: it installs the process's tracer
//! provider.

use std::sync::Arc;
use std::time::Duration;

use common::messaging::{
    AmqpMessaging, HandlerError, HandlerFn, IncomingMessage, Messaging, MessagingSettings,
    OutgoingMessage, QueueSpec, QueueType,
};
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use test_support::{Broker, Cleanup, amqp_url, unique};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

const LIMIT: Duration = Duration::from_secs(10);

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// Spans of this thread (the tests run on current-thread runtimes) exported to memory, until
/// the guard is dropped.
fn exported() -> (InMemorySpanExporter, tracing::subscriber::DefaultGuard) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(common::telemetry::layer_for(provider, "telemetry-test"));
    (exporter, tracing::subscriber::set_default(subscriber))
}

#[tokio::test(flavor = "current_thread")]
async fn a_trace_goes_through_the_broker_and_a_message_without_one_starts_its_own() {
    let (exporter, _default) = exported();

    let cleanup = Cleanup::new();
    let queue = QueueSpec::work_queue(cleanup.work_queue(unique("traced")), QueueType::Quorum);
    let client = AmqpMessaging::connect(MessagingSettings::new(amqp_url(), "telemetry-test"))
        .await
        .expect("connects");
    let (seen, mut deliveries) = mpsc::unbounded_channel();
    let handler = HandlerFn(move |message: IncomingMessage| {
        let seen = seen.clone();
        async move {
            let _ = seen.send(message.message_id);
            Ok::<(), HandlerError>(())
        }
    });
    let subscription = client
        .subscribe_to_queue(&queue, "telemetry-test", Arc::new(handler))
        .await
        .expect("subscribes");

    let request = tracing::info_span!(
        "request",
        otel.name = "GET /accounts/{accountId}",
        otel.kind = "server"
    );
    let message = OutgoingMessage::json("VipNotification", &serde_json::json!({})).expect("json");
    let traced_id = message.message_id.clone();
    client
        .publish_on_queue(&queue, message)
        .instrument(request)
        .await
        .expect("published");
    let got = timeout(LIMIT, deliveries.recv())
        .await
        .expect("delivered")
        .expect("open");
    assert_eq!(got.as_deref(), Some(traced_id.as_str()));

    let broker = Broker::connect().await;
    broker
        .publish_raw(&queue.name, br#"{"accountId":"10000"}"#, "untraced")
        .await;
    let got = timeout(LIMIT, deliveries.recv())
        .await
        .expect("delivered")
        .expect("open");
    assert_eq!(got.as_deref(), Some("untraced"));
    subscription.stop().await;
    client.close().await.expect("closes");

    let spans = exporter.get_finished_spans().expect("spans");
    let [request] = named(&spans, "GET /accounts/{accountId}")[..] else {
        panic!("one request span: {spans:#?}");
    };
    let send_name = format!("send {}", queue.name);
    let [send] = named(&spans, &send_name)[..] else {
        panic!("one send span: {spans:#?}");
    };
    let process_name = format!("process {}", queue.name);
    let processed = named(&spans, &process_name);
    assert_eq!(processed.len(), 2, "{spans:#?}");
    let trace = request.span_context.trace_id();
    assert_eq!(send.span_context.trace_id(), trace);
    assert_eq!(send.parent_span_id, request.span_context.span_id());
    assert_eq!(send.span_kind, SpanKind::Producer);
    let (traced, untraced): (Vec<_>, Vec<_>) = processed
        .into_iter()
        .partition(|s| s.span_context.trace_id() == trace);
    let [traced] = traced[..] else {
        panic!("one process span in the trace")
    };
    assert_eq!(traced.span_kind, SpanKind::Consumer);
    assert_eq!(
        traced.parent_span_id,
        send.span_context.span_id(),
        "a child of send"
    );
    assert!(
        traced
            .links
            .iter()
            .any(|l| l.span_context.span_id() == send.span_context.span_id()
                && l.span_context.trace_id() == trace),
        "and linked to it"
    );
    let attribute = |span: &SpanData, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(
        attribute(traced, "messaging.system").as_deref(),
        Some("rabbitmq")
    );
    assert_eq!(attribute(traced, "messaging.message.id"), Some(traced_id));
    assert_eq!(
        attribute(traced, "messaging.destination.name"),
        Some(queue.name.clone())
    );
    let [untraced] = untraced[..] else {
        panic!("one process span outside it")
    };
    assert_eq!(
        untraced.parent_span_id,
        SpanId::INVALID,
        "a trace of its own"
    );
    assert!(untraced.links.is_empty());
}

/// The test service's own settings (none).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Own {}

impl common::config::Settings for Own {}

#[tokio::test(flavor = "current_thread")]
async fn a_bus_refresh_and_its_ack_continue_the_trace_of_the_event() {
    let (exporter, _default) = exported();

    let cleanup = Cleanup::new();
    let bus_name = cleanup.exchange(unique("springCloudBus"));
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("testsvc-it.yml"),
        format!(
            "server_port: 0\nserver_name: traced\namqp_server_url: {}\nconfig_event_bus: {bus_name}\n",
            amqp_url()
        ),
    )
    .expect("config written");
    let launch = common::bootstrap::Launch {
        application: "testsvc",
        version: "9.9.9",
        config: common::config::ConfigArgs {
            config_server_url: None,
            profile: "it".into(),
            config_branch: "master".into(),
            config_repo: dir.path().to_owned(),
        },
        env: common::config::EnvVars::from_pairs([]),
    };
    let service = common::bootstrap::Service::<Own>::start(launch)
        .await
        .expect("starts");
    let mut refreshed = service.refreshed();

    // A config server that traces sends the event inside its own trace.
    let client = AmqpMessaging::connect(MessagingSettings::new(amqp_url(), "telemetry-test"))
        .await
        .expect("connects");
    let event = common::config::RefreshEvent::new("configserver:0:x", Some("testsvc:**"));
    let message = OutgoingMessage::json("RefreshRemoteApplicationEvent", &event).expect("json");
    let bus = common::messaging::ExchangeSpec::topic(&bus_name);
    client
        .publish(&bus, &bus_name, message)
        .instrument(tracing::info_span!("busrefresh"))
        .await
        .expect("published");
    timeout(LIMIT, refreshed.changed())
        .await
        .expect("refreshed")
        .expect("open");
    let send_name = format!("send {bus_name}");
    let deadline = tokio::time::Instant::now() + LIMIT;
    let spans = loop {
        // The ack's send span ends after the refresh: wait for both sends.
        let spans = exporter.get_finished_spans().expect("spans");
        if named(&spans, &send_name).len() >= 2 {
            break spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ack sent: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    client.close().await.expect("closes");
    service.close().await.expect("closes");

    let [origin] = named(&spans, "busrefresh")[..] else {
        panic!("one event span: {spans:#?}");
    };
    let trace = origin.span_context.trace_id();
    let in_trace = |name: &str| {
        spans
            .iter()
            .filter(|s| s.name == name && s.span_context.trace_id() == trace)
            .count()
    };
    assert_eq!(in_trace("bus refresh"), 1, "{spans:#?}");
    assert!(
        spans
            .iter()
            .any(|s| s.name.starts_with("process ") && s.span_context.trace_id() == trace),
        "the bus listener's process span is in the event's trace: {spans:#?}"
    );
    // Two sends in the trace: the event's own, and the ack, sent inside the listener's spans.
    let sends: Vec<_> = spans
        .iter()
        .filter(|s| s.name == send_name && s.span_context.trace_id() == trace)
        .collect();
    assert_eq!(sends.len(), 2, "{spans:#?}");
    assert!(
        sends
            .iter()
            .any(|s| s.parent_span_id != origin.span_context.span_id()),
        "the ack is sent inside the event's trace: {spans:#?}"
    );
}
