//! Typed settings built from layers, lowest precedence first:
//!
//! 1. the defaults of the service's settings type (`#[serde(default)]`; a field without one is
//!    required),
//! 2. the config source's properties,
//! 3. environment variables `GOBLOG_<KEY>`, with `__` between nested keys
//!    (`GOBLOG_QUOTES__TIMEOUT_MS=250` sets `quotes.timeout_ms`; matching ignores case),
//! 4. values that a Spring Cloud Bus environment change set, as Spring puts them above all.
//!
//! The flags choosing the source (`--config-server-url`, …) are no settings.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ConfigError;
use super::args::ConfigArgs;
use super::properties::Properties;
use super::source::LoadedSource;
use super::unknown::{SourceKeys, UnknownSetting, deserialize_noting_ignored, unknown_settings};

/// Prefix of the environment variables that set settings.
pub const ENV_PREFIX: &str = "GOBLOG";
/// Separator, in an environment variable's name, between the parts of a nested key.
pub const ENV_SEPARATOR: &str = "__";

/// What the loader needs to know about a service's settings type.
pub trait Settings: DeserializeOwned + Serialize + Send + Sync + 'static {
    /// Flattened keys, or prefixes of them, whose new value takes effect only after a restart
    /// (the HTTP port, the broker URL…).
    const RESTART_KEYS: &'static [&'static str] = &[];

    /// Whether a change of the flattened `key` takes effect only after a restart.
    fn needs_restart(key: &str) -> bool {
        Self::RESTART_KEYS
            .iter()
            .any(|prefix| crate::config::refresh::is_under(key, prefix))
    }

    /// Checks what the types cannot (a URL's scheme, a non-empty list); runs after every load.
    fn validate(&self) -> Result<(), InvalidSetting> {
        Ok(())
    }

    /// Builds the settings from the merged tree, with the keys (Spring's notation) of the
    /// values no field took. A type that reads several parts from the same keys overrides it
    /// to return only the keys that no part took.
    fn from_tree(tree: ::config::Value) -> Result<(Self, Vec<String>), ::config::ConfigError> {
        deserialize_noting_ignored(tree)
    }
}

/// A setting that has the right type but a wrong value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The flattened key, e.g. `quotes.url`.
    pub key: String,
    /// What is wrong, e.g. "must be an http:// URL".
    pub reason: String,
}

impl InvalidSetting {
    /// `key` is wrong because of `reason`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The `GOBLOG_*` environment variables, captured once so every reload sees the same ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvVars(BTreeMap<String, String>);

impl EnvVars {
    /// This process's `GOBLOG_*` variables, less those of [`ConfigArgs`].
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    /// The `GOBLOG_*` variables among `pairs`, less those of [`ConfigArgs`].
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let prefix = format!("{ENV_PREFIX}_");
        Self(
            pairs
                .into_iter()
                .filter(|(name, _)| {
                    let name = name.to_ascii_uppercase();
                    name.starts_with(&prefix) && !ConfigArgs::ENV_VARS.contains(&name.as_str())
                })
                .collect(),
        )
    }

    /// The keys the variables set, as the `config` crate reads them (`GOBLOG_QUOTES__URL` sets
    /// `quotes.url`), each naming its variable.
    fn layer(&self) -> impl Iterator<Item = SourceKeys> + '_ {
        let prefix_len = ENV_PREFIX.len() + 1;
        self.0
            .iter()
            .filter(move |(name, value)| !value.is_empty() && name.len() > prefix_len)
            .map(move |(name, _)| SourceKeys {
                origin: format!("environment variable {name}"),
                keys: vec![
                    name[prefix_len..]
                        .to_ascii_lowercase()
                        .replace(ENV_SEPARATOR, "."),
                ],
            })
    }

    fn source(&self) -> ::config::Environment {
        ::config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator(ENV_SEPARATOR)
            .ignore_empty(true)
            .source(Some(self.0.clone().into_iter().collect()))
    }
}

/// Builds and validates `S` from the layers, with the keys the layers set that `S` does not
/// read; an error names the key and the sources consulted.
pub fn build_settings<S: Settings>(
    loaded: &LoadedSource,
    env: &EnvVars,
    overrides: &Properties,
) -> Result<(S, Vec<UnknownSetting>), ConfigError> {
    let sources = consulted::<S>(loaded, env, overrides);
    let tree = ::config::Config::builder()
        .add_source(loaded.properties.clone())
        .add_source(env.source())
        .add_source(overrides.clone())
        .build()
        .map_err(|error| explain(error, &sources))?
        .cache;
    let (settings, ignored) = S::from_tree(tree).map_err(|error| explain(error, &sources))?;
    settings
        .validate()
        .map_err(|invalid| ConfigError::Invalid {
            key: invalid.key,
            reason: invalid.reason,
            sources,
        })?;
    let layers: Vec<SourceKeys> = overrides
        .layers()
        .into_iter()
        .chain(env.layer())
        .chain(loaded.keys.iter().cloned())
        .collect();
    let unknown = unknown_settings(&ignored, &layers, &settings);
    Ok((settings, unknown))
}

/// The layers, named for an error message (variable names only, never values).
fn consulted<S>(loaded: &LoadedSource, env: &EnvVars, overrides: &Properties) -> String {
    let mut layers = vec![format!("defaults of {}", std::any::type_name::<S>())];
    let sources = if loaded.info.property_sources.is_empty() {
        "no property source".to_owned()
    } else {
        loaded.info.property_sources.join(", ")
    };
    layers.push(format!("{} [{sources}]", loaded.info.description));
    let names: Vec<&str> = env.0.keys().map(String::as_str).collect();
    layers.push(if names.is_empty() {
        format!("environment (no {ENV_PREFIX}_* variable set)")
    } else {
        format!("environment [{}]", names.join(", "))
    });
    if !overrides.is_empty() {
        layers.push(format!(
            "bus environment changes ({} keys)",
            overrides.len()
        ));
    }
    layers.join("; ")
}

fn explain(error: ::config::ConfigError, sources: &str) -> ConfigError {
    let invalid = |key: String, reason: String| ConfigError::Invalid {
        key,
        reason,
        sources: sources.to_owned(),
    };
    let from = |origin: Option<String>| origin.map(|o| format!(" (from {o})")).unwrap_or_default();
    match error {
        ::config::ConfigError::NotFound(key) => invalid(key, "is missing".to_owned()),
        ::config::ConfigError::Type {
            key: Some(key),
            origin,
            unexpected,
            expected,
        } => invalid(
            key,
            format!(
                "is invalid: got {unexpected}, expected {expected}{}",
                from(origin)
            ),
        ),
        ::config::ConfigError::At {
            error,
            key: Some(key),
            origin,
        } => invalid(key, format!("is invalid: {error}{}", from(origin))),
        other => ConfigError::Build {
            reason: other.to_string(),
            sources: sources.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_goblog_variables_that_are_settings() {
        let env = EnvVars::from_pairs(
            [
                ("GOBLOG_SERVER_NAME", "a"),
                ("goblog_quotes__url", "b"),
                ("GOBLOG_PROFILE", "test"),
                ("goblog_config_server_url", "http://x"),
                ("GOBLOGX_SERVER_NAME", "c"),
                ("PATH", "/bin"),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
        );
        let names: Vec<&str> = env.0.keys().map(String::as_str).collect();
        assert_eq!(names, ["GOBLOG_SERVER_NAME", "goblog_quotes__url"]);
    }
}
