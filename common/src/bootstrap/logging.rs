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
use tracing::{Dispatch, warn};

use crate::telemetry::{self, TelemetrySettings};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
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
    let json = json();
    let startup = if json {
        Dispatch::new(Registry::default().with(fmt::layer().json().flatten_event(true)))
    } else {
        let ansi = std::io::stdout().is_terminal();
        Dispatch::new(Registry::default().with(fmt::layer().with_ansi(ansi)))
    };
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
    let exported = || {
        Targets::new().with_default(LevelFilter::INFO).with_targets(
            ["hyper", "reqwest", "sqlx", "lapin", "opentelemetry"].map(|t| (t, LevelFilter::OFF)),
        )
    };
    let installed = if json() {
        let registry = tracing_subscriber::registry()
            .with(fmt::layer().json().flatten_event(true).with_filter(filter));
        let otel =
            telemetry::layer(application, version, export).map(|l| l.with_filter(exported()));
        registry.with(otel).try_init()
    } else {
        let ansi = std::io::stdout().is_terminal();
        let registry =
            tracing_subscriber::registry().with(fmt::layer().with_ansi(ansi).with_filter(filter));
        let otel =
            telemetry::layer(application, version, export).map(|l| l.with_filter(exported()));
        registry.with(otel).try_init()
    };
    if installed.is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// `LOG_FORMAT=json`: one JSON object per line.
fn json() -> bool {
    std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"))
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
