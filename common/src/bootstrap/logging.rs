//! `tracing` for both services: human output on a terminal, JSON lines when `LOG_FORMAT=json`
//! (for log collectors), and a level that a config refresh can change without a restart.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::warn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

type FilterHandle = reload::Handle<EnvFilter, Registry>;

/// The installed filter, if this process installed one (tests may start several services).
static FILTER: OnceLock<FilterHandle> = OnceLock::new();

/// Installs the global subscriber once per process; `RUST_LOG`, when set, wins over settings.
pub fn init(level: &str) {
    if FILTER.get().is_some() {
        return;
    }
    let (filter, handle) = reload::Layer::new(filter_for(level));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = if json {
        registry
            .with(fmt::layer().json().flatten_event(true))
            .try_init()
    } else {
        let ansi = std::io::stdout().is_terminal();
        registry.with(fmt::layer().with_ansi(ansi)).try_init()
    };
    if installed.is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// Applies a refreshed `log_level`.
pub fn set_level(level: &str) {
    if let Some(handle) = FILTER.get()
        && let Err(error) = handle.reload(filter_for(level))
    {
        warn!(%error, level, "could not change the log level");
    }
}

fn filter_for(level: &str) -> EnvFilter {
    if let Ok(directives) = std::env::var("RUST_LOG") {
        return EnvFilter::new(directives);
    }
    EnvFilter::try_new(level).unwrap_or_else(|error| {
        eprintln!("log_level {level:?} is not a valid filter ({error}); using info");
        EnvFilter::new("info")
    })
}
