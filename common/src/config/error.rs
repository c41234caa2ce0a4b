//! What can go wrong while loading settings, each error naming what was wrong and where.

use std::path::PathBuf;

/// An error of the configuration layer. URLs in it are always redacted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config server URL given on the command line or in the environment is not a URL.
    #[error("config server URL {url} is not a valid URL ({reason}): check --config-server-url")]
    BadServerUrl { url: String, reason: String },

    /// The config server could not be reached, or the request timed out.
    #[error("config server request to {url} failed: {reason}")]
    ServerRequest { url: String, reason: String },

    /// The config server answered with a status that is neither 200 nor 404.
    #[error("config server {url} answered HTTP {status}{}", status_hint(*status))]
    ServerStatus {
        url: String,
        status: reqwest::StatusCode,
    },

    /// The config server knows no such application, profile or label.
    #[error(
        "config server {url} answered 404 Not Found: check the application name, \
         --profile and --config-branch (label)"
    )]
    NotFound { url: String },

    /// The config server's answer is not a Spring Cloud Config environment.
    #[error(
        "config server {url} sent a body that is not a Spring Cloud Config environment: {reason}"
    )]
    BadResponse { url: String, reason: String },

    /// The server's answer is larger than any configuration: refused before it is read whole.
    #[error(
        "config server {url} answered more than {limit_bytes} bytes: that is no configuration \
         (check --config-server-url)"
    )]
    ResponseTooLarge { url: String, limit_bytes: usize },

    /// The startup retries are spent; `last` is the last attempt's error.
    #[error(
        "config server {url} gave no configuration after {attempts} attempts over {waited_secs} s \
         (last: {last}): check that the config server is running and reachable from here, \
         and --config-server-url"
    )]
    ServerUnavailable {
        url: String,
        attempts: usize,
        waited_secs: u64,
        last: String,
    },

    /// A value still encrypted: the config server could not decrypt it (missing key?).
    #[error(
        "key `{key}` from {origin} is still encrypted ({{cipher}}…): \
         the config server could not decrypt it; check its encryption key"
    )]
    Undecrypted { key: String, origin: String },

    /// The config server answered no property source for one of the profiles.
    #[error(
        "no configuration file matches profile {profile:?} for {application} on config server \
         {url}; property sources served: {served}; check --profile and --config-branch"
    )]
    ProfileNotServed {
        profile: String,
        application: String,
        url: String,
        served: String,
    },

    /// The local configuration folder does not exist.
    #[error(
        "configuration folder {} does not exist (working directory {}): check --config-repo \
         (GOBLOG_CONFIG_REPO) or give --config-server-url", dir.display(), cwd.display()
    )]
    NoLocalRepo { dir: PathBuf, cwd: PathBuf },

    /// No file of the local configuration folder is for one of the profiles.
    #[error(
        "no configuration file matches profile {profile:?} for {application} in {}; \
         available profiles: {}",
        folder(dir),
        list_or_none(available)
    )]
    UnknownProfile {
        profile: String,
        application: String,
        dir: PathBuf,
        available: Vec<String>,
    },

    /// The local configuration folder holds no file for this service.
    #[error(
        "no configuration for {application} with profile {profile} in {dir}: \
         looked for {looked_for}; check --config-repo and --profile"
    )]
    NoLocalFiles {
        application: String,
        profile: String,
        dir: PathBuf,
        looked_for: String,
    },

    /// A local configuration file could not be read or parsed.
    #[error("cannot read configuration file {path}: {reason}")]
    LocalFile { path: PathBuf, reason: String },

    /// A setting is missing or has a wrong value.
    #[error("setting `{key}` {reason} (sources consulted: {sources})")]
    Invalid {
        key: String,
        reason: String,
        sources: String,
    },

    /// The layers could not be combined into settings for a reason not tied to one key.
    #[error("settings could not be built: {reason} (sources consulted: {sources})")]
    Build { reason: String, sources: String },

    /// A message on the Spring Cloud Bus exchange that is not a bus event.
    #[error("not a Spring Cloud Bus event: {reason}")]
    BadBusEvent { reason: String },
}

impl ConfigError {
    /// Whether a later attempt may succeed: the server is down, starting or overloaded.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::ServerRequest { .. } => true,
            Self::ServerStatus { status, .. } => {
                status.is_server_error() || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }
}

/// What to check when the config server refuses the request.
fn status_hint(status: reqwest::StatusCode) -> &'static str {
    match status {
        reqwest::StatusCode::UNAUTHORIZED | reqwest::StatusCode::FORBIDDEN => {
            ": check the user and password in --config-server-url"
        }
        _ => "",
    }
}

/// A folder as a user types it: `config-repo/`.
fn folder(dir: &std::path::Path) -> String {
    let shown = dir.display().to_string();
    if shown.ends_with(std::path::MAIN_SEPARATOR) {
        shown
    } else {
        format!("{shown}{}", std::path::MAIN_SEPARATOR)
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
