//! The quotes-service client.
//!
//! A quote is decoration: a failed call yields `None` and is counted, never an error for the
//! caller. After several failures in a row a [`CircuitBreaker`] stops calling for a
//! cool-down, so a missing quotes service costs nothing per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::breaker::CircuitBreaker;

/// A quote, with the Go original's JSON field names; the default (empty fields) is what the
/// original answers with when it has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The quote itself.
    #[serde(rename = "quote")]
    pub text: String,
    /// The address of the quotes-service instance that served it.
    #[serde(rename = "ipAddress")]
    pub ip_address: String,
    /// The quote's language.
    pub language: String,
}

/// How to reach the quotes service and when to stop trying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotesSettings {
    /// The full URL to `GET`.
    pub url: String,
    /// Time allowed for one call, connection included, in milliseconds.
    pub timeout_ms: u64,
    /// Consecutive failures after which calls stop for a cool-down.
    pub failure_threshold: u32,
    /// How long calls stop for, in milliseconds.
    pub cool_down_ms: u64,
}

impl Default for QuotesSettings {
    fn default() -> Self {
        Self {
            url: "http://quotes-service:8080/api/quote?strength=4".into(),
            timeout_ms: 250,
            failure_threshold: 5,
            cool_down_ms: 5_000,
        }
    }
}

/// Why a [`QuotesClient`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum QuotesError {
    /// `quotes.url` is not a URL.
    #[error("quotes.url {url:?} is not a valid URL")]
    InvalidUrl {
        url: String,
        #[source]
        source: url::ParseError,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the quotes HTTP client")]
    Client(#[from] reqwest::Error),
}

/// Fetches quotes over one pooled HTTP client; shared by all requests.
#[derive(Debug)]
pub struct QuotesClient {
    http: reqwest::Client,
    url: Url,
    breaker: CircuitBreaker,
    failures: AtomicU64,
    skipped: AtomicU64,
}

impl QuotesClient {
    /// A client for `settings`; fails only on an invalid URL or HTTP client setup.
    pub fn new(settings: &QuotesSettings) -> Result<Self, QuotesError> {
        let url = Url::parse(&settings.url).map_err(|source| QuotesError::InvalidUrl {
            url: settings.url.clone(),
            source,
        })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .build()?;
        Ok(Self {
            http,
            url,
            breaker: CircuitBreaker::new(
                settings.failure_threshold,
                Duration::from_millis(settings.cool_down_ms),
            ),
            failures: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        })
    }

    /// A quote, or `None` if the quotes service failed or is being left alone for a cool-down.
    pub async fn quote(&self) -> Option<Quote> {
        if !self.breaker.try_acquire(Instant::now()) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        match self.fetch().await {
            Ok(quote) => {
                self.breaker.on_success();
                Some(quote)
            }
            Err(error) => {
                self.breaker.on_failure(Instant::now());
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(url = %self.url, error = %error, "quotes service call failed");
                None
            }
        }
    }

    /// Calls that failed (connection, timeout, status or body).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Calls not made because the breaker was open.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Whether calls are currently being refused.
    pub fn is_breaker_open(&self) -> bool {
        self.breaker.is_open(Instant::now())
    }

    async fn fetch(&self) -> Result<Quote, reqwest::Error> {
        self.http
            .get(self.url.clone())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn settings(
        server: &MockServer,
        failure_threshold: u32,
        cool_down: Duration,
    ) -> QuotesSettings {
        QuotesSettings {
            url: format!("{}/api/quote?strength=4", server.uri()),
            timeout_ms: 2_000,
            failure_threshold,
            cool_down_ms: u64::try_from(cool_down.as_millis()).unwrap(),
        }
    }

    fn quote_json() -> serde_json::Value {
        serde_json::json!({
            "quote": "May the source be with you. Always.",
            "ipAddress": "10.0.0.5:8080",
            "language": "en"
        })
    }

    async fn mount_quote(server: &MockServer) {
        Mock::given(method("GET"))
            .and(path("/api/quote"))
            .and(query_param("strength", "4"))
            .respond_with(ResponseTemplate::new(200).set_body_json(quote_json()))
            .mount(server)
            .await;
    }

    async fn mount_failure(server: &MockServer) {
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(500))
            .mount(server)
            .await;
    }

    async fn requests(server: &MockServer) -> usize {
        server.received_requests().await.unwrap().len()
    }

    #[test]
    fn default_settings_point_at_the_quotes_service() {
        let settings = QuotesSettings::default();
        assert_eq!(
            settings.url,
            "http://quotes-service:8080/api/quote?strength=4"
        );
        assert!(QuotesClient::new(&settings).is_ok());
    }

    #[test]
    fn an_invalid_url_is_refused_up_front() {
        let settings = QuotesSettings {
            url: "not a url".into(),
            ..QuotesSettings::default()
        };
        let err = QuotesClient::new(&settings).unwrap_err();
        assert!(err.to_string().contains("not a url"), "{err}");
    }

    #[tokio::test]
    async fn a_quote_is_decoded_with_the_go_field_names() {
        let server = MockServer::start().await;
        mount_quote(&server).await;
        let client = QuotesClient::new(&settings(&server, 3, Duration::from_secs(60))).unwrap();

        let quote = client.quote().await.unwrap();
        assert_eq!(quote.text, "May the source be with you. Always.");
        assert_eq!(quote.ip_address, "10.0.0.5:8080");
        assert_eq!(quote.language, "en");
        assert_eq!(serde_json::to_value(&quote).unwrap(), quote_json());
        assert_eq!(client.failures(), 0);
    }

    #[tokio::test]
    async fn failures_yield_none_and_are_counted() {
        let server = MockServer::start().await;
        Mock::given(path("/api/quote"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        mount_failure(&server).await;
        let client = QuotesClient::new(&settings(&server, 10, Duration::from_secs(60))).unwrap();

        assert_eq!(client.quote().await, None, "a body that is not a quote");
        assert_eq!(client.quote().await, None, "a 500");
        assert_eq!(client.failures(), 2);
    }

    #[tokio::test]
    async fn a_slow_quotes_service_is_cut_off_by_the_timeout() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(quote_json())
                    .set_delay(Duration::from_secs(5)),
            )
            .mount(&server)
            .await;
        let settings = QuotesSettings {
            timeout_ms: 50,
            ..settings(&server, 3, Duration::from_secs(60))
        };
        let client = QuotesClient::new(&settings).unwrap();

        let started = Instant::now();
        assert_eq!(client.quote().await, None);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(client.failures(), 1);
    }

    #[tokio::test]
    async fn an_unreachable_quotes_service_yields_none() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let settings = QuotesSettings {
            url: format!("http://127.0.0.1:{port}/api/quote"),
            ..QuotesSettings::default()
        };
        let client = QuotesClient::new(&settings).unwrap();
        assert_eq!(client.quote().await, None);
        assert_eq!(client.failures(), 1);
    }

    #[tokio::test]
    async fn the_breaker_opens_after_consecutive_failures() {
        let server = MockServer::start().await;
        mount_failure(&server).await;
        let client = QuotesClient::new(&settings(&server, 3, Duration::from_secs(3600))).unwrap();

        for _ in 0..10 {
            assert_eq!(client.quote().await, None);
        }
        assert_eq!(requests(&server).await, 3, "no call during the cool-down");
        assert_eq!(client.failures(), 3);
        assert_eq!(client.skipped(), 7);
        assert!(client.is_breaker_open());
    }

    #[tokio::test]
    async fn the_breaker_closes_when_a_call_after_the_cool_down_succeeds() {
        let server = MockServer::start().await;
        mount_failure(&server).await;
        let client = QuotesClient::new(&settings(&server, 2, Duration::from_millis(20))).unwrap();
        assert_eq!(client.quote().await, None);
        assert_eq!(client.quote().await, None);
        assert!(client.is_breaker_open());

        server.reset().await;
        mount_quote(&server).await;
        // Poll until the cool-down is over and the trial call succeeds.
        let deadline = Instant::now() + Duration::from_secs(5);
        let quote = loop {
            if let Some(quote) = client.quote().await {
                break quote;
            }
            assert!(
                Instant::now() < deadline,
                "the breaker never let a call through"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        assert_eq!(quote.language, "en");
        assert_eq!(requests(&server).await, 1, "one trial call");
        assert!(!client.is_breaker_open());
        assert!(client.quote().await.is_some());
        assert_eq!(requests(&server).await, 2);
    }
}
