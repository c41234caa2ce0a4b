//! OpenTelemetry traces, off unless asked for: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, and `OTEL_SDK_DISABLED` not `true`, the spans
//! the services make are exported over OTLP/HTTP (protobuf) in batches, with `service.name`
//! and `service.version`; the SDK reads the sampler from `OTEL_TRACES_SAMPLER` and
//! `OTEL_TRACES_SAMPLER_ARG` (default: parent-based, always on). Off, no OpenTelemetry layer
//! is installed at all.
//!
//! Trace context crosses HTTP and AMQP as W3C `traceparent` / `tracestate`: [`set_parent`]
//! takes it from a request's or a message's headers, [`inject`] writes the current span's.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::registry::LookupSpan;

/// The process's tracer provider, once exporting is on (tests may start several services).
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported: without it, nothing reads or writes trace context.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// The OpenTelemetry layer for `service` at `version`, if the environment asks for export.
/// A failure to build the exporter is printed, and the service runs without it.
pub(crate) fn layer<S>(service: &str, version: &str) -> Option<OpenTelemetryLayer<S, SdkTracer>>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim() == "true");
    if disabled
        || !(set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    {
        return None;
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build();
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("{service}: traces are not exported: {error}");
            return None;
        }
    };
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .with_attribute(KeyValue::new("service.version", version.to_owned()))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    Some(layer_for(provider, service))
}

/// The layer exporting through `provider` (the process's from now on, so context is read and
/// written): what [`layer`] installs, and what a test installs with an in-memory exporter.
pub fn layer_for<S>(provider: SdkTracerProvider, service: &str) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let tracer = provider.tracer(service.to_owned());
    let _ = PROVIDER.set(provider);
    tracing_opentelemetry::layer().with_tracer(tracer)
}

/// Exports what is pending; call before the process exits.
pub fn flush() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.force_flush()
    {
        tracing::warn!(%error, "could not export the last spans");
    }
}

/// Trace context as message headers carry it: `traceparent`, `tracestate`.
pub type TraceHeaders = BTreeMap<String, String>;

/// The current span's context as headers; empty when nothing is exported.
pub fn inject() -> TraceHeaders {
    let mut headers = TraceHeaders::new();
    if enabled() {
        let context = tracing::Span::current().context();
        TraceContextPropagator::new().inject_context(&context, &mut MapCarrier(&mut headers));
    }
    headers
}

/// The `traceparent` and `tracestate` a request or a message carried.
#[derive(Debug, Clone, Copy, Default)]
pub struct Carried<'a> {
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
}

/// Makes the context `carried`, if valid, the parent of `span` (not entered yet), and, for a
/// consumer, also a link, as OpenTelemetry's messaging conventions ask. Without one the span
/// stays where it is (a new trace for a root span).
pub fn set_parent(span: &tracing::Span, carried: Carried<'_>, link: bool) {
    if !enabled() || carried.traceparent.is_none() {
        return;
    }
    let carrier = carried;
    let context = TraceContextPropagator::new().extract_with_context(&Context::new(), &carrier);
    let remote = context.span().span_context().clone();
    if !remote.is_valid() {
        return;
    }
    if link {
        span.add_link(remote);
    }
    let _ = span.set_parent(context);
}

struct MapCarrier<'a>(&'a mut TraceHeaders);

impl Injector for MapCarrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl Extractor for Carried<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}
