//! The HTTP side both services share: graceful shutdown on SIGINT/SIGTERM (Swarm stops
//! containers with SIGTERM), `GET /metrics`, request metrics by route, and `servedBy`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;
use tracing::warn;

use crate::telemetry;

/// Buckets for latencies, in seconds: 50 µs to 1 s for requests and commits; up to a minute
/// for lags (a broker outage holds notifications in the outbox for seconds).
const LATENCY_BUCKETS: [f64; 15] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0, 2.5,
    10.0, 60.0,
];

const HTTP_REQUESTS: &str = "http_requests_total";
const HTTP_REQUEST_DURATION: &str = "http_request_duration_seconds";

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed on first use.
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    METRICS
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("seconds".into()), &LATENCY_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder)
                .inspect_err(|error| warn!(%error, "metrics are disabled"))
                .ok()?;
            start_upkeep(handle.clone());
            metrics::describe_counter!(
                HTTP_REQUESTS,
                "HTTP requests answered, by route, method and status"
            );
            metrics::describe_histogram!(
                HTTP_REQUEST_DURATION,
                metrics::Unit::Seconds,
                "Time to answer an HTTP request, by route"
            );
            Some(handle)
        })
        .as_ref()
}

/// The recorder keeps every histogram sample until upkeep folds it into the buckets; without
/// it, memory grows with each request until `/metrics` is scraped.
fn start_upkeep(handle: PrometheusHandle) {
    let upkeep = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(error) = upkeep {
        warn!(%error, "no metrics upkeep thread: histograms are folded only when scraped");
    }
}

/// Adds `GET /metrics` and counts every request by route, method and status with its latency.
pub fn with_metrics(router: Router) -> Router {
    let handle = metrics_handle().cloned();
    router
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move { handle.map(|h| h.render()).unwrap_or_default() }
            }),
        )
        .route_layer(middleware::from_fn(track))
}

/// Counts and times each request, inside a span named as OpenTelemetry's HTTP conventions
/// name a server span (`GET /accounts/{accountId}`) when spans are exported (log lines carry
/// the handler's span instead, with its ids).
async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().to_string();
    let span = tracing::info_span!(
        target: telemetry::EXPORT_ONLY,
        "http request",
        http.request.method = method.as_str(),
        http.route = route.as_str(),
        http.response.status_code = tracing::field::Empty,
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
    );
    if telemetry::enabled() {
        telemetry::describe(&span, || format!("{method} {route}"), "server", &[]);
        let header = |name| request.headers().get(name).and_then(|v| v.to_str().ok());
        let carried = telemetry::Carried {
            traceparent: header("traceparent"),
            tracestate: header("tracestate"),
        };
        telemetry::set_parent(&span, carried, false);
    }
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, &labels[..1])
        .record(started.elapsed().as_secs_f64());
    response
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// The address clients reach this instance at, as the original's `servedBy`: the first
/// non-loopback IPv4 address, else 127.0.0.1.
pub fn served_by() -> IpAddr {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|interface| interface.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}
