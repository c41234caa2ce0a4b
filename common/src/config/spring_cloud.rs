//! Client of a Spring Cloud Config server: `GET {url}/{application}/{profile}/{label}`, with
//! timeouts, and retries at startup because Swarm starts the services before the server.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use reqwest::{StatusCode, header};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::ConfigError;
use super::local_repo::profiles;
use super::properties::{PropertySource, flatten};
use crate::redact::redact_url;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read: a service's configuration is a few kB; a server (or something
/// else at its URL) answering more is refused before it fills memory.
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// How long startup keeps asking a config server that is down, starting or overloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the second attempt; doubles after each failure.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// Give up this long after the first attempt began, attempts included.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    /// Long enough for a Spring Boot config server started alongside on a small Swarm node.
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
            give_up_after: Duration::from_secs(90),
        }
    }
}

/// What a config server answered for one application, profile and label.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerEnvironment {
    /// The repository version (a git commit id), when the server reports one.
    pub version: Option<String>,
    /// The property sources, highest precedence first.
    pub sources: Vec<PropertySource>,
}

/// A Spring Cloud Config server at a base URL, serving one label (git branch).
#[derive(Clone)]
pub struct SpringCloudConfig {
    base: Url,
    label: String,
    retry: RetryPolicy,
    http: reqwest::Client,
}

impl SpringCloudConfig {
    /// A client for the server at the `http://` URL `url` (user and password in it are sent as
    /// basic auth).
    pub fn new(url: &str, label: &str) -> Result<Self, ConfigError> {
        let bad_url = |reason: &str| ConfigError::BadServerUrl {
            url: redact_url(url),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(url).map_err(|error| bad_url(&error.to_string()))?;
        if base.scheme() != "http" {
            return Err(bad_url(
                "the scheme must be http: this build has no TLS for the config server",
            ));
        }
        base.path_segments_mut()
            .map_err(|()| bad_url("it cannot have a path"))?
            .pop_if_empty();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|error| ConfigError::ServerRequest {
                url: redact_url(url),
                reason: format!("cannot build the HTTP client: {}", describe(error)),
            })?;
        Ok(Self {
            base,
            label: label.to_owned(),
            retry: RetryPolicy::default(),
            http,
        })
    }

    /// Replaces the startup retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The environment's URL; a `/` in the label is sent as `(_)`, as Spring expects.
    pub fn environment_url(&self, application: &str, profile: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend([application, profile, &self.label.replace('/', "(_)")]);
        }
        url
    }

    /// The server's base URL with its password redacted, for logs and `/info`.
    pub fn redacted_url(&self) -> String {
        redact_url(self.base.as_str())
    }

    /// Asks the server once.
    pub async fn fetch(
        &self,
        application: &str,
        profile: &str,
    ) -> Result<ServerEnvironment, ConfigError> {
        let url = self.environment_url(application, profile);
        let shown = redact_url(url.as_str());
        let request_failed = |error: reqwest::Error| ConfigError::ServerRequest {
            url: shown.clone(),
            reason: describe(error),
        };
        let response = self
            .http
            .get(url.clone())
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(request_failed)?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(ConfigError::NotFound { url: shown }),
            status => return Err(ConfigError::ServerStatus { url: shown, status }),
        }
        let too_large = || ConfigError::ResponseTooLarge {
            url: shown.clone(),
            limit_bytes: MAX_RESPONSE_BYTES,
        };
        if response
            .content_length()
            .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_failed)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let wire: WireEnvironment =
            serde_json::from_slice(&body).map_err(|error| ConfigError::BadResponse {
                url: shown.clone(),
                reason: error.to_string(),
            })?;
        let environment = ServerEnvironment::from(wire);
        if let Some(missing) = profiles(profile).find(|profile| !serves(&environment, profile)) {
            return Err(ConfigError::ProfileNotServed {
                profile: missing.to_owned(),
                application: application.to_owned(),
                url: shown,
                served: served(&environment),
            });
        }
        Ok(environment)
    }

    /// Asks the server until it answers, retrying only what may heal by itself (connection
    /// errors, timeouts, 5xx, 429) with exponential backoff, each failure logged; gives up
    /// [`RetryPolicy::give_up_after`] after it began, however long the attempts take, with one
    /// error naming the URL, the last failure and what to check.
    pub async fn fetch_with_retry(
        &self,
        application: &str,
        profile: &str,
    ) -> Result<ServerEnvironment, ConfigError> {
        let started = Instant::now();
        let attempts = Cell::new(0_usize);
        let last = std::cell::RefCell::new(None::<String>);
        let url = redact_url(self.environment_url(application, profile).as_str());
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.first_delay)
            .with_max_delay(self.retry.max_delay)
            .without_max_times()
            .with_jitter();
        let retrying = (|| {
            attempts.set(attempts.get() + 1);
            self.fetch(application, profile)
        })
        .retry(backoff)
        .when(ConfigError::is_transient)
        .notify(|error, delay| {
            tracing::warn!(
                url,
                attempt = attempts.get(),
                reason = %short_reason(error),
                retry_in = ?delay,
                "config server not ready, retrying"
            );
            *last.borrow_mut() = Some(short_reason(error));
        });
        let unavailable = |last: String| ConfigError::ServerUnavailable {
            url: url.clone(),
            attempts: attempts.get(),
            waited_secs: started.elapsed().as_secs(),
            last,
        };
        match tokio::time::timeout(self.retry.give_up_after, retrying).await {
            Ok(Err(error)) if error.is_transient() => Err(unavailable(short_reason(&error))),
            Ok(other) => other,
            Err(_) => {
                let during = "no answer in time".to_owned();
                let previous = last.borrow_mut().take();
                Err(unavailable(previous.map_or(during.clone(), |last| {
                    format!("{during}; before that: {last}")
                })))
            }
        }
    }
}

/// Debug output shows the URL without its password.
impl fmt::Debug for SpringCloudConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpringCloudConfig")
            .field("url", &self.redacted_url())
            .field("label", &self.label)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Whether a property source is for `profile`: Spring names a source after its file or
/// document (`…/accountservice-test.yml`, `vault:accountservice,test`), so the profile stands
/// in its name between separators.
fn serves(environment: &ServerEnvironment, profile: &str) -> bool {
    let is_separator = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '_');
    environment.sources.iter().any(|source| {
        source.name.match_indices(profile).any(|(at, _)| {
            is_separator(source.name[..at].chars().next_back())
                && is_separator(source.name[at + profile.len()..].chars().next())
        })
    })
}

/// The property sources' names for an error, passwords redacted.
fn served(environment: &ServerEnvironment) -> String {
    if environment.sources.is_empty() {
        return "none".to_owned();
    }
    environment
        .sources
        .iter()
        .map(|source| redact_url(&source.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The last failure of a retried request, without the URL the surrounding error already names.
fn short_reason(error: &ConfigError) -> String {
    match error {
        ConfigError::ServerStatus { status, .. } => format!("HTTP {status}"),
        ConfigError::ServerRequest { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// A reqwest error and its causes on one line, without the URL (which may hold a password).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEnvironment {
    version: Option<String>,
    property_sources: Vec<WirePropertySource>,
}

#[derive(Deserialize)]
struct WirePropertySource {
    name: String,
    source: serde_json::Map<String, Value>,
}

impl From<WireEnvironment> for ServerEnvironment {
    fn from(wire: WireEnvironment) -> Self {
        let sources = wire
            .property_sources
            .into_iter()
            .map(|source| PropertySource {
                name: source.name,
                properties: source
                    .source
                    .into_iter()
                    .flat_map(|(key, value)| flatten_value(key, value))
                    .collect(),
            })
            .collect();
        Self {
            version: wire.version,
            sources,
        }
    }
}

/// One server entry as flattened keys: an origin-tracked `{"value":…,"origin":…}` is its value;
/// any other nested map or list is flattened under the key.
fn flatten_value(key: String, value: Value) -> Vec<(String, Value)> {
    let value = match value {
        Value::Object(mut map)
            if map.contains_key("value") && map.keys().all(|k| k == "value" || k == "origin") =>
        {
            map.remove("value").unwrap_or(Value::Null)
        }
        other => other,
    };
    match value {
        Value::Object(_) | Value::Array(_) => {
            let nested = serde_json::json!({ key: value });
            flatten(&nested).into_iter().collect()
        }
        scalar => vec![(key, scalar)],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builds_the_environment_url_with_spring_label_escaping() {
        let client = SpringCloudConfig::new("http://u:p@configserver:8888/", "feature/x")
            .expect("valid URL");
        assert_eq!(
            client.environment_url("accountservice", "test").as_str(),
            "http://u:p@configserver:8888/accountservice/test/feature(_)x"
        );
        assert_eq!(client.redacted_url(), "http://u:***@configserver:8888/");
        assert!(!format!("{client:?}").contains(":p@"));
    }

    #[test]
    fn rejects_what_is_not_an_http_url_without_leaking_the_password() {
        for url in [
            "configserver:8888",
            "amqp://u:secret@host",
            "https://u:secret@host",
            "not a url",
        ] {
            let error = SpringCloudConfig::new(url, "master").expect_err(url);
            assert!(!error.to_string().contains("secret"), "{error}");
        }
    }

    #[test]
    fn a_source_is_for_a_profile_that_its_name_holds_between_separators() {
        let environment = |names: &[&str]| ServerEnvironment {
            version: None,
            sources: names
                .iter()
                .map(|name| PropertySource {
                    name: (*name).to_owned(),
                    properties: Default::default(),
                })
                .collect(),
        };
        let table = [
            ("file:/config-repo/accountservice-test.yml", "test", true),
            (
                "Config resource 'file [/config/accountservice-eu-west.yml]' via location",
                "eu-west",
                true,
            ),
            ("vault:accountservice,test", "test", true),
            (
                "file:/config-repo/accountservice-testing.yml",
                "test",
                false,
            ),
            ("file:/config-repo/accountservice.yml", "locl", false),
            ("file:/config-repo/accountservice_test.yml", "test", false),
        ];
        for (name, profile, expected) in table {
            assert_eq!(serves(&environment(&[name]), profile), expected, "{name}");
        }
        assert!(!serves(&environment(&[]), "test"));
    }

    #[test]
    fn unwraps_origin_tracked_values_and_flattens_nested_ones() {
        assert_eq!(
            flatten_value("a".into(), json!({"value": 5, "origin": "file:x.yml:3:4"})),
            vec![("a".to_owned(), json!(5))]
        );
        assert_eq!(
            flatten_value("ids".into(), json!(["1", "2"])),
            vec![
                ("ids[0]".to_owned(), json!("1")),
                ("ids[1]".to_owned(), json!("2"))
            ]
        );
        assert_eq!(
            flatten_value("q".into(), json!({"url": "u"})),
            vec![("q.url".to_owned(), json!("u"))]
        );
    }
}
