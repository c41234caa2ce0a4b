//! Loads a service's settings snapshots from its source: at startup, on a bus refresh, and on a
//! bus environment change.

use super::ConfigError;
use super::args::ConfigArgs;
use super::properties::Properties;
use super::refresh::Snapshot;
use super::settings::{EnvVars, Settings, build_settings};
use super::source::{ConfigSource, LoadedSource};

/// One service's way to its settings: which source, application name and profile.
#[derive(Debug, Clone)]
pub struct SettingsLoader {
    source: ConfigSource,
    application: String,
    profile: String,
    env: EnvVars,
}

impl SettingsLoader {
    /// The loader for `application`, with the source that `args` choose.
    pub fn new(args: &ConfigArgs, application: &str, env: EnvVars) -> Result<Self, ConfigError> {
        Ok(Self::with_source(
            ConfigSource::from_args(args)?,
            application,
            &args.profile,
            env,
        ))
    }

    /// The loader for `application` and `profile` from `source`.
    pub fn with_source(
        source: ConfigSource,
        application: &str,
        profile: &str,
        env: EnvVars,
    ) -> Self {
        Self {
            source,
            application: application.to_owned(),
            profile: profile.to_owned(),
            env,
        }
    }

    /// The application name settings are loaded for.
    pub fn application(&self) -> &str {
        &self.application
    }

    /// The profile settings are loaded for.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The first snapshot, waiting for a config server that is still starting.
    pub async fn load_at_startup<S: Settings>(&self) -> Result<Snapshot<S>, ConfigError> {
        let source = self
            .source
            .load_at_startup(&self.application, &self.profile)
            .await?;
        self.snapshot(source, Properties::default())
    }

    /// A fresh snapshot from the source, for a `RefreshRemoteApplicationEvent`; the bus
    /// environment changes of `current` are kept.
    pub async fn reload<S: Settings>(
        &self,
        current: &Snapshot<S>,
    ) -> Result<Snapshot<S>, ConfigError> {
        let source = self.source.load(&self.application, &self.profile).await?;
        self.snapshot(source, current.overrides.clone())
    }

    /// `current` with `values` set, for an `EnvironmentChangeRemoteApplicationEvent`.
    pub fn apply_changes<S: Settings>(
        &self,
        current: &Snapshot<S>,
        values: Properties,
    ) -> Result<Snapshot<S>, ConfigError> {
        let overrides = current.overrides.clone().overlay(values)?;
        self.snapshot(current.source.clone(), overrides)
    }

    fn snapshot<S: Settings>(
        &self,
        source: LoadedSource,
        overrides: Properties,
    ) -> Result<Snapshot<S>, ConfigError> {
        let (settings, unknown) = build_settings(&source, &self.env, &overrides)?;
        Ok(Snapshot {
            settings,
            source,
            overrides,
            unknown,
        })
    }
}
