//! One trace from a VIP read to its offer, through both services running in this process:
//! the request's span (continuing the caller's `traceparent`), the outbox append inside it,
//! the relay's `send vip_queue` continuing it from the traceparent the entry kept,
//! vipservice's `process vip_queue` under that and its `record offer`, which the group's
//! `offers commit` links to; a read whose notification waited in the outbox table through a
//! broker outage (claimed from the table, not handed over) continues its trace as well. Its
//! own test binary: it installs the process's subscriber with the SDK's in-memory exporter
//! before the services start.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::Duration;

use common::bootstrap::Launch;
use common::config::{ConfigArgs, EnvVars};
use common::contract::accountservice::PUBLISHED;
use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use test_support::{Broker, amqp_url};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
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

/// The `offers commit` span linking to a `record offer` of `trace`, once it ended.
fn commit_of(spans: &[SpanData], trace: TraceId) -> Option<&SpanData> {
    let record = spans
        .iter()
        .find(|s| s.name == "record offer" && s.span_context.trace_id() == trace)?;
    spans.iter().find(|s| {
        s.name == "offers commit"
            && s.links
                .iter()
                .any(|link| link.span_context.span_id() == record.span_context.span_id())
    })
}

/// vipservice on `queue` with an offers database in `dir`, in this process, until `stop`.
async fn spawn_vipservice(
    dir: &std::path::Path,
    queue: &str,
    bus: &str,
) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let yaml = format!(
        "server_port: 0
server_name: vipservice trace
amqp_server_url: {url}
config_event_bus: {bus}
log_level: warn
amqp:
  queue_type: classic
vip_queue: {queue}
offers:
  database_url: sqlite://{db}?mode=rwc
",
        url = amqp_url(),
        db = dir.join("offers.db").display(),
    );
    std::fs::write(dir.join("vipservice-it.yml"), yaml).expect("config written");
    let launch = Launch {
        application: "vipservice",
        version: "0.0.0-test",
        config: ConfigArgs {
            config_server_url: None,
            profile: "it".into(),
            config_branch: "master".into(),
            config_repo: dir.to_owned(),
        },
        env: EnvVars::from_pairs([]),
    };
    let app = vipservice::Application::build(launch)
        .await
        .expect("vipservice starts");
    let (stop, stopping) = oneshot::channel::<()>();
    let stopped = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = stopping.await;
        })
        .await
        .expect("vipservice stops cleanly");
    });
    (stop, stopped)
}

/// Waits until trace `n`'s offer was committed (its `offers commit` span exported).
async fn wait_committed(exporter: &InMemorySpanExporter, n: u8) {
    let trace = TraceId::from_hex(&trace_id(n)).expect("trace id");
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let spans = exporter.get_finished_spans().expect("spans");
        if commit_of(&spans, trace).is_some() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "read {n}: no offers commit linked to it: {:?}",
            in_trace(&spans, trace)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_vip_read_is_one_trace_to_its_offer_also_through_an_outage() {
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
    let (stop_vipservice, vipservice) =
        spawn_vipservice(app.config.dir.path(), &queue, &app.config.bus).await;

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
    wait_committed(&exporter, 1).await;
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
    wait_committed(&exporter, 2).await;

    let _ = stop_vipservice.send(());
    vipservice.await.expect("the vipservice task");
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
        let request = spans
            .iter()
            .find(|s| s.name == "GET /accounts/{account_id}" && s.span_context.trace_id() == trace)
            .expect("its request span");
        assert_eq!(request.span_kind, SpanKind::Server, "read {n}");
        let route = request
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "http.route")
            .map(|kv| kv.value.to_string());
        assert_eq!(route.as_deref(), Some("/accounts/{account_id}"), "read {n}");
        let record = spans
            .iter()
            .find(|s| s.name == "record offer" && s.span_context.trace_id() == trace)
            .expect("its record offer span");
        assert_eq!(
            record.parent_span_id,
            consumed.span_context.span_id(),
            "read {n}: record offer is a child of process"
        );
        assert!(
            commit_of(&spans, trace).is_some(),
            "read {n}: its offers commit"
        );
    }
}
