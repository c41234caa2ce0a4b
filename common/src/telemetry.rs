//! OpenTelemetry traces, off unless asked for: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, or else the setting `telemetry.otlp_endpoint`,
//! and `OTEL_SDK_DISABLED` not `true`, the spans the services make are exported over
//! OTLP/HTTP (protobuf) in batches, with `service.name` and `service.version`; the SDK reads
//! the sampler from `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` (default:
//! parent-based, always on). Off, no OpenTelemetry layer is installed at all.
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
use serde::{Deserialize, Serialize};
use tracing::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::registry::LookupSpan;

/// The target of spans made for export alone, which log lines leave out: HTTP server spans,
/// whose fields (method, route) log lines do without, while formatting them for every request
/// would cost a not-VIP read some 15% more instructions. Without export they are not made.
pub(crate) const EXPORT_ONLY: &str = "goblog::export_only";

/// The process's tracer provider, once exporting is on (tests may start several services).
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether spans are exported: without it, nothing reads or writes trace context.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// The setting that turns export on where the environment does not (the standard variables
/// win: an operator's override). Read once at startup: a refresh does not change it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// The collector's base URL as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it
    /// (`http://collector:4318`): spans go to its `/v1/traces`.
    pub otlp_endpoint: Option<String>,
}

impl TelemetrySettings {
    /// Whether `otlp_endpoint`, if set, is an http(s) URL; the error says why not.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        match self.otlp_endpoint.as_deref().map(str::trim) {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => Err(
                "must be an http:// or https:// URL (OTLP over HTTP, e.g. http://collector:4318)",
            ),
            _ => Ok(()),
        }
    }
}

/// Where spans are exported to.
enum Endpoint {
    /// The standard variables name it; the SDK reads them itself.
    FromEnvironment,
    /// `telemetry.otlp_endpoint`, as a signal URL.
    Traces(String),
}

/// Where the environment, else `settings`, send spans: `None` when export is off.
fn endpoint(settings: &TelemetrySettings) -> Option<Endpoint> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim() == "true") {
        return None;
    }
    if set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Some(Endpoint::FromEnvironment);
    }
    let base = settings.otlp_endpoint.as_deref()?.trim();
    (!base.is_empty())
        .then(|| Endpoint::Traces(format!("{}/v1/traces", base.trim_end_matches('/'))))
}

/// The OpenTelemetry layer for `service` at `version`, if the environment or `settings` ask
/// for export. A failure to build the exporter is printed, and the service runs without it.
pub(crate) fn layer<S>(
    service: &str,
    version: &str,
    settings: &TelemetrySettings,
) -> Option<OpenTelemetryLayer<S, SdkTracer>>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    let builder = match endpoint(settings)? {
        Endpoint::FromEnvironment => builder,
        Endpoint::Traces(url) => builder.with_endpoint(url),
    };
    let exporter = match builder.build() {
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
    // What the layer would add to every span, and do on every poll of an instrumented future
    // (a span is entered and left at each), at a cost paid per request: source location,
    // thread and target attributes, busy/idle timings, and the OpenTelemetry context made
    // current (nothing here reads it: context is taken from the span itself).
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
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

/// Gives `span` (made with these fields `Empty`) its OpenTelemetry name (`otel.name`), kind
/// (`otel.kind`) and the constant attributes of its convention (`messaging.system`, …), when
/// spans are exported. Log lines do without them: every field a span has is formatted for
/// them when the span is made, at a cost paid per request.
pub fn describe(
    span: &tracing::Span,
    name: impl FnOnce() -> String,
    kind: &'static str,
    constants: &[(&'static str, &'static str)],
) {
    if !enabled() {
        return;
    }
    span.record("otel.name", name());
    span.record("otel.kind", kind);
    for (field, value) in constants {
        span.record(*field, *value);
    }
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

/// The current span, to be linked from a span that serves several (a group commit's, which
/// belongs to no one trace): empty when nothing is exported.
#[derive(Debug, Clone, Default)]
pub struct Link(Option<opentelemetry::trace::SpanContext>);

impl Link {
    pub fn to_current() -> Self {
        if !enabled() {
            return Self(None);
        }
        let context = tracing::Span::current().context();
        let span = context.span().span_context().clone();
        Self(span.is_valid().then_some(span))
    }

    /// Adds the link to `span` (one not ended yet).
    pub fn add_to(&self, span: &tracing::Span) {
        if let Some(context) = &self.0 {
            span.add_link(context.clone());
        }
    }
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
