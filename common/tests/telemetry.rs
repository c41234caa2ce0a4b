//! Trace context across the broker, on the real broker, with the SDK's in-memory exporter: a
//! publish made inside a trace carries `traceparent`, and the consumer's `process` span
//! continues it (a child of `send`, with a link to it); a message without one (the Go
//! original's) starts a trace of its own. Its own test binary: it installs the process's
//! tracer provider.

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

#[tokio::test(flavor = "current_thread")]
async fn a_trace_goes_through_the_broker_and_a_message_without_one_starts_its_own() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(common::telemetry::layer_for(
        provider.clone(),
        "telemetry-test",
    ));
    let _default = tracing::subscriber::set_default(subscriber);

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
    provider.force_flush().expect("flushed");

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
