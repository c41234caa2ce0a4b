//! `tracing` for both services: human output on a terminal, JSON lines when `LOG_FORMAT=json`
//! (for log collectors), and a level that a config refresh can change without a restart.
//!
//! The filter is a [`Targets`] list (`info`, `warn,lapin=error`): the same syntax as
//! `RUST_LOG` without span and field matching, which would pull a regex engine into both
//! services and cost them resident memory for a feature no deployment of theirs uses.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::instrument::WithSubscriber;
use tracing::level_filters::LevelFilter;
use tracing::{Dispatch, Subscriber, warn};

use crate::telemetry::{self, TelemetrySettings};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, fmt, reload};

type FilterHandle = reload::Handle<Targets, Registry>;

/// The installed filter, if this process installed one (tests may start several services).
static FILTER: OnceLock<FilterHandle> = OnceLock::new();

/// Runs `loading` (the settings' first load) with its log lines written at INFO, before the
/// process's subscriber exists: that one is made from the settings (level, trace export).
/// Where a subscriber is installed already (a test's, or a first service's), it is used.
pub async fn while_loading<F: Future>(loading: F) -> F::Output {
    if tracing::dispatcher::has_been_set() {
        return loading.await;
    }
    let startup = Dispatch::new(Registry::default().with(log_lines()));
    loading.with_subscriber(startup).await
}

/// Installs the global subscriber once per process; `RUST_LOG`, when set, wins over settings.
/// The log lines follow `level`; the spans exported to OpenTelemetry (when on: see
/// [`telemetry`]) are this project's at INFO whatever the log level, without the libraries'.
pub fn init(level: &str, application: &str, version: &str, export: &TelemetrySettings) {
    if FILTER.get().is_some() {
        return;
    }
    let (filter, handle) = reload::Layer::new(filter_for(level));
    // Without export the filter is the whole subscriber's: what it turns off is never made,
    // and nothing is paid per span for telling layers apart. With export each layer has its
    // own.
    let installed = match telemetry::layer(application, version, export) {
        None => tracing_subscriber::registry()
            .with(filter)
            .with(log_lines())
            .try_init(),
        Some(otel) => tracing_subscriber::registry()
            .with(log_lines().with_filter(filter))
            .with(otel.with_filter(exported_spans()))
            .try_init(),
    };
    if installed.is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// The log lines: one JSON object each with `LOG_FORMAT=json` (for log collectors), else
/// human-readable, in colour on a terminal.
fn log_lines<S>() -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    if json {
        fmt::layer().json().flatten_event(true).boxed()
    } else {
        fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .boxed()
    }
}

/// The spans exported: this project's at INFO, whatever the log level, without the libraries'.
fn exported_spans() -> Targets {
    Targets::new().with_default(LevelFilter::INFO).with_targets(
        ["hyper", "reqwest", "sqlx", "lapin", "opentelemetry"].map(|t| (t, LevelFilter::OFF)),
    )
}

/// Applies a refreshed `log_level`.
pub fn set_level(level: &str) {
    if let Some(handle) = FILTER.get()
        && let Err(error) = handle.reload(filter_for(level))
    {
        warn!(%error, level, "could not change the log level");
    }
}

/// The log lines' filter: `RUST_LOG` or `level`, never the spans made for export alone.
fn filter_for(level: &str) -> Targets {
    directives_for(level).with_target(telemetry::EXPORT_ONLY, LevelFilter::OFF)
}

fn directives_for(level: &str) -> Targets {
    if let Ok(directives) = std::env::var("RUST_LOG") {
        match parse(&directives) {
            Ok(filter) => return filter,
            Err(error) => eprintln!("RUST_LOG {directives:?}: {error}; using log_level"),
        }
    }
    parse(level).unwrap_or_else(|error| {
        eprintln!("log_level {level:?}: {error}; using info");
        Targets::new().with_default(LevelFilter::INFO)
    })
}

/// Parses `level` or `target=level` items separated by commas. `Targets` alone would read a
/// misspelt level (`infoo`) as a target name and silently log nothing else.
fn parse(directives: &str) -> Result<Targets, String> {
    for item in directives.split(',').map(str::trim) {
        if !item.contains('=') && item.parse::<LevelFilter>().is_err() {
            return Err(format!("{item:?} is neither a level nor target=level"));
        }
    }
    directives
        .parse()
        .map_err(|error| format!("not a valid filter ({error})"))
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn a_level_and_per_target_directives_parse() {
        let filter = parse("warn,lapin=error").expect("a valid filter");
        assert_eq!(filter.default_level(), Some(LevelFilter::WARN));
        assert!(filter.would_enable("vipservice", &Level::WARN));
        assert!(!filter.would_enable("lapin::io_loop", &Level::WARN));
    }

    #[test]
    fn spans_made_for_export_alone_are_never_logged() {
        for level in [
            "trace",
            "info",
            &format!("{}=trace", telemetry::EXPORT_ONLY),
        ] {
            let filter = filter_for(level);
            assert!(
                !filter.would_enable(telemetry::EXPORT_ONLY, &Level::ERROR),
                "{level}"
            );
        }
    }

    #[test]
    fn a_misspelt_level_is_refused() {
        for invalid in ["loud", "infoo,lapin=warn", "lapin=loud"] {
            assert!(parse(invalid).is_err(), "{invalid}");
        }
    }
}
