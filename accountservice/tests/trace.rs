//! One trace from a VIP read to the consumer: the request's span (continuing the caller's
//! `traceparent`), the outbox append inside it, the relay's `send vip_queue` continuing it
//! from the traceparent the entry kept, and a consumer's `process vip_queue` under that; a
//! read whose notification waited in the outbox table through a broker outage (claimed from
//! the table, not handed over) continues its trace as well. Its own test binary: it installs
//! the process's subscriber with the SDK's in-memory exporter before the service starts.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::Arc;
use std::time::Duration;

use common::contract::accountservice::PUBLISHED;
use common::messaging::{
    AmqpMessaging, HandlerError, HandlerFn, IncomingMessage, Messaging, MessagingSettings,
    QueueSpec, QueueType,
};
use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use test_support::{Broker, amqp_url};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use helpers::*;

const LIMIT: Duration = Duration::from_secs(15);
/// The trace id of read `n`, as its caller sends it.
fn trace_id(n: u8) -> String {
    format!("4bf92f3577b34da6a3ce929d0e0e47{n:02x}")
}

fn traceparent(n: u8) -> String {
    format!("00-{}-00f067aa0ba902b7-01", trace_id(n))
}

/// The spans of trace `trace`, by name.
fn in_trace(spans: &[SpanData], trace: TraceId) -> Vec<&str> {
    spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .map(|s| s.name.as_ref())
        .collect()
}

#[tokio::test]
async fn a_vip_read_is_one_trace_to_the_consumer_also_through_an_outage() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    tracing_subscriber::registry()
        .with(common::telemetry::layer_for(
            provider.clone(),
            "accountservice",
        ))
        .try_init()
        .expect("the test's subscriber is the first");

    let broker = Broker::connect().await;
    let (config, proxy) = TestConfig::through_proxy().await;
    let queue = config.queue.clone();
    let app = spawn_app_with(config).await;
    let consumer = AmqpMessaging::connect(MessagingSettings::new(amqp_url(), "trace-test"))
        .await
        .expect("consumer connects");
    let (seen, mut delivered) = mpsc::unbounded_channel();
    let handler = HandlerFn(move |message: IncomingMessage| {
        let seen = seen.clone();
        async move {
            let _ = seen.send(message.message_id);
            Ok::<(), HandlerError>(())
        }
    });
    let subscription = consumer
        .subscribe_to_queue(
            &QueueSpec::work_queue(&queue, QueueType::Classic),
            "trace-test",
            Arc::new(handler),
        )
        .await
        .expect("subscribes");

    let read = |n| {
        let app = &app;
        async move {
            app.http
                .get(format!("{}/accounts/10000", app.base))
                .header("traceparent", traceparent(n))
                .send()
                .await
                .expect("answers")
                .status()
        }
    };
    assert_eq!(read(1).await, 200);
    timeout(LIMIT, delivered.recv())
        .await
        .expect("delivered")
        .expect("open");
    // Its confirm in before the cut (else it is published again: at least once).
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !app
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics")
        .lines()
        .any(|line| line == format!("{PUBLISHED} 1"))
    {
        assert!(tokio::time::Instant::now() < deadline, "no confirm");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The broker away: the notification waits in the outbox table, and is claimed from there
    // once the broker is back.
    cut_broker(&broker, &proxy, &app).await;
    assert_eq!(read(2).await, 200);
    proxy.refuse(false);
    timeout(LIMIT, delivered.recv())
        .await
        .expect("delivered after the outage")
        .expect("open");

    subscription.stop().await;
    consumer.close().await.expect("closes");
    app.stop().await;
    provider.force_flush().expect("flushed");
    let spans = exporter.get_finished_spans().expect("spans");
    let send = format!("send {queue}");
    let process = format!("process {queue}");
    for n in [1, 2] {
        let trace = TraceId::from_hex(&trace_id(n)).expect("trace id");
        let names = in_trace(&spans, trace);
        let count = |name: &str| names.iter().filter(|n| **n == name).count();
        assert_eq!(
            count("GET /accounts/{account_id}"),
            1,
            "read {n}: {names:?}"
        );
        assert_eq!(count("outbox append"), 1, "read {n}: {names:?}");
        // Read 2's first try may have timed out in the outage: a send span of its own.
        assert!(count(&send) >= 1, "read {n}: {names:?}");
        assert_eq!(count(&process), 1, "read {n}: {names:?}");
        let consumed = spans
            .iter()
            .find(|s| s.name == process && s.span_context.trace_id() == trace)
            .expect("its process span");
        assert!(
            spans
                .iter()
                .any(|s| s.name == send && s.span_context.span_id() == consumed.parent_span_id),
            "read {n}: process is a child of a send"
        );
    }
}
