//! Where settings come from: a Spring Cloud Config server, or the local `config-repo/` folder
//! when no server URL is given.

use serde::Serialize;

use super::ConfigError;
use super::args::ConfigArgs;
use super::local_repo::LocalRepo;
use super::properties::{Properties, PropertySource};
use super::spring_cloud::{ServerEnvironment, SpringCloudConfig};
use super::unknown::SourceKeys;
use crate::redact::redact_url;

/// The source of a service's configuration.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A Spring Cloud Config server.
    Server(SpringCloudConfig),
    /// A local folder in Spring's native layout.
    Local(LocalRepo),
}

/// What `/info` says about the source a snapshot was loaded from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceInfo {
    /// The server URL (password redacted) or the folder.
    pub description: String,
    /// The repository version (git commit) the server reported, if any.
    pub version: Option<String>,
    /// The property sources consulted, highest precedence first.
    pub property_sources: Vec<String>,
}

/// The merged properties of one load, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedSource {
    /// The merged flattened properties.
    pub properties: Properties,
    /// Where they came from.
    pub info: SourceInfo,
    /// The keys of each property source, highest precedence first, shadowed ones included:
    /// what a warning about an unknown key names.
    pub keys: Vec<SourceKeys>,
}

impl ConfigSource {
    /// The server when `--config-server-url` is given, else the `--config-repo` folder.
    pub fn from_args(args: &ConfigArgs) -> Result<Self, ConfigError> {
        match &args.config_server_url {
            Some(url) => Ok(Self::Server(SpringCloudConfig::new(
                url.expose(),
                &args.config_branch,
            )?)),
            None => Ok(Self::Local(LocalRepo::new(&args.config_repo))),
        }
    }

    /// Loads once: what a refresh does.
    pub async fn load(
        &self,
        application: &str,
        profile: &str,
    ) -> Result<LoadedSource, ConfigError> {
        match self {
            Self::Server(server) => {
                let environment = server.fetch(application, profile).await?;
                from_server(server, environment)
            }
            Self::Local(repo) => from_local(repo, application, profile),
        }
    }

    /// Loads at startup, waiting for a config server that is not up yet.
    pub async fn load_at_startup(
        &self,
        application: &str,
        profile: &str,
    ) -> Result<LoadedSource, ConfigError> {
        match self {
            Self::Server(server) => {
                let environment = server.fetch_with_retry(application, profile).await?;
                from_server(server, environment)
            }
            Self::Local(repo) => from_local(repo, application, profile),
        }
    }
}

fn from_server(
    server: &SpringCloudConfig,
    environment: ServerEnvironment,
) -> Result<LoadedSource, ConfigError> {
    let server_url = server.redacted_url();
    let keys = keys_of(&environment.sources, |name| {
        format!("{} on config server {server_url}", redact_url(name))
    });
    let property_sources = environment.sources.iter().map(|s| s.name.clone()).collect();
    Ok(LoadedSource {
        properties: Properties::from_sources(environment.sources)?,
        info: SourceInfo {
            description: format!("Spring Cloud Config {server_url}"),
            version: environment.version,
            property_sources,
        },
        keys,
    })
}

fn from_local(
    repo: &LocalRepo,
    application: &str,
    profile: &str,
) -> Result<LoadedSource, ConfigError> {
    let sources = repo.load(application, profile)?;
    let keys = keys_of(&sources, |name| {
        name.strip_prefix("file:").unwrap_or(name).to_owned()
    });
    let property_sources = sources.iter().map(|s| s.name.clone()).collect();
    Ok(LoadedSource {
        properties: Properties::from_sources(sources)?,
        info: SourceInfo {
            description: format!("local folder {}", repo.dir().display()),
            version: None,
            property_sources,
        },
        keys,
    })
}

fn keys_of(sources: &[PropertySource], origin: impl Fn(&str) -> String) -> Vec<SourceKeys> {
    sources
        .iter()
        .map(|source| SourceKeys {
            origin: origin(&source.name),
            keys: source.properties.keys().cloned().collect(),
        })
        .collect()
}
