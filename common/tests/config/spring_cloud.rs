//! The config server client against wiremock serving captured Spring Cloud Config answers.

use common::config::{
    ConfigError, ConfigSource, EnvVars, SettingsLoader, Snapshot, SpringCloudConfig,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestSettings, fixture, no_env, quick_retries};

fn json(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(fixture(name), "application/json")
}

async fn serve(route: &str, response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

fn loader(url: &str, label: &str, profile: &str, env: EnvVars) -> SettingsLoader {
    let client = SpringCloudConfig::new(url, label)
        .expect("valid URL")
        .with_retry(quick_retries());
    SettingsLoader::with_source(ConfigSource::Server(client), "accountservice", profile, env)
}

async fn load(url: &str, label: &str, env: EnvVars) -> Result<Snapshot<TestSettings>, ConfigError> {
    loader(url, label, "test", env).load_at_startup().await
}

/// `http://user:secret@127.0.0.1:port`: credentials that must never be shown.
fn with_password(server: &MockServer) -> String {
    server.uri().replacen("http://", "http://user:secret@", 1)
}

#[tokio::test]
async fn merges_all_property_sources_first_wins_then_the_environment() {
    let server = serve("/accountservice/test/P9", json("accountservice-test.json")).await;

    let snapshot = load(&server.uri(), "P9", no_env()).await.expect("loads");
    let settings = &snapshot.settings;
    assert_eq!(settings.server_port, 6767);
    assert_eq!(settings.server_name, "Accountservice TEST");
    assert_eq!(settings.amqp_server_url, "amqp://guest:guest@rabbitmq:5672");
    assert_eq!(settings.vip_account_ids, ["10000"]);
    assert_eq!(
        settings.quotes.url,
        "http://quotes-service:8080/api/quote?strength=4"
    );
    assert_eq!(settings.quotes.timeout_ms, 250);
    let info = &snapshot.source.info;
    assert_eq!(
        info.version.as_deref(),
        Some("3f1c0a9e7d5b4c2a8e6f0b1d2c3e4f5a6b7c8d9e")
    );
    assert_eq!(info.property_sources.len(), 2);
    assert!(
        info.description.contains(&server.uri()),
        "{}",
        info.description
    );

    let env = EnvVars::from_pairs([
        ("GOBLOG_QUOTES__TIMEOUT_MS".to_owned(), "75".to_owned()),
        ("goblog_server_name".to_owned(), "from env".to_owned()),
        ("OTHER_SERVER_NAME".to_owned(), "ignored".to_owned()),
    ]);
    let settings = load(&server.uri(), "P9", env)
        .await
        .expect("loads")
        .settings;
    assert_eq!(settings.quotes.timeout_ms, 75);
    assert_eq!(settings.server_name, "from env");
}

#[tokio::test]
async fn sends_a_label_with_a_slash_as_spring_expects_and_credentials_as_basic_auth() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/accountservice/test/feature(_)p9"))
        .and(header("authorization", "Basic dXNlcjpzZWNyZXQ="))
        .respond_with(json("accountservice-test.json"))
        .expect(1)
        .mount(&server)
        .await;

    let snapshot = load(&with_password(&server), "feature/p9", no_env())
        .await
        .expect("loads");
    assert_eq!(snapshot.settings.server_name, "Accountservice TEST");
    assert!(!snapshot.source.info.description.contains("secret"));
}

#[tokio::test]
async fn retries_while_the_server_answers_503() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .with_priority(1)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/accountservice/test/P9"))
        .respond_with(json("accountservice-test.json"))
        .expect(1)
        .mount(&server)
        .await;

    let snapshot = load(&server.uri(), "P9", no_env())
        .await
        .expect("third try loads");
    assert_eq!(snapshot.settings.server_name, "Accountservice TEST");
}

#[tokio::test]
async fn gives_up_with_one_line_naming_the_url_the_status_and_what_to_check() {
    let server = serve("/accountservice/test/master", ResponseTemplate::new(503)).await;

    let error = load(&with_password(&server), "master", no_env())
        .await
        .expect_err("gives up");
    assert!(matches!(error, ConfigError::ServerUnavailable { attempts, .. } if attempts > 1));
    let message = error.to_string();
    let shown = format!(
        "{}/accountservice/test/master",
        with_password(&server).replace("secret", "***")
    );
    assert!(message.contains(&shown), "{message}");
    assert!(
        message.contains("HTTP 503 Service Unavailable"),
        "{message}"
    );
    assert!(message.contains("check"), "{message}");
    assert!(!message.contains("secret"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[tokio::test]
async fn gives_up_on_a_server_that_is_not_listening() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let url = format!("http://user:secret@127.0.0.1:{port}");

    let error = load(&url, "master", no_env()).await.expect_err("gives up");
    let message = error.to_string();
    assert!(
        matches!(error, ConfigError::ServerUnavailable { .. }),
        "{message}"
    );
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test]
async fn gives_up_on_a_server_that_accepts_and_never_answers_within_its_time() {
    // Accepts connections (the kernel's backlog) and never reads or answers them.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let url = format!("http://user:secret@127.0.0.1:{port}");

    // quick_retries gives up after 100 ms; a single attempt alone would wait 10 s.
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        load(&url, "master", no_env()),
    )
    .await
    .expect("gives up in its own time, not an attempt's");
    let error = gave_up.expect_err("no configuration");
    let message = error.to_string();
    assert!(
        matches!(error, ConfigError::ServerUnavailable { .. }),
        "{message}"
    );
    assert!(message.contains("no answer in time"), "{message}");
    assert!(!message.contains("secret"), "{message}");
    drop(listener);
}

#[tokio::test]
async fn an_answer_larger_than_any_configuration_is_refused_at_once() {
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(5 << 20));
    let server = serve(
        "/accountservice/test/master",
        ResponseTemplate::new(200).set_body_raw(huge, "application/json"),
    )
    .await;

    let error = load(&server.uri(), "master", no_env())
        .await
        .expect_err("refused");
    let message = error.to_string();
    assert!(
        matches!(error, ConfigError::ResponseTooLarge { .. }),
        "{message}"
    );
    assert!(message.contains(&server.uri()), "{message}");
    assert_eq!(
        server.received_requests().await.map(|r| r.len()),
        Some(1),
        "not retried"
    );
}

#[tokio::test]
async fn a_404_is_a_clear_error_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(404).set_body_raw(fixture("not-found.json"), "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;

    let error = load(&server.uri(), "master", no_env())
        .await
        .expect_err("not found");
    assert!(matches!(error, ConfigError::NotFound { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("/accountservice/test/master"), "{message}");
    assert!(message.contains("--profile"), "{message}");
}

#[tokio::test]
async fn a_body_that_is_no_environment_is_a_clear_error_at_once() {
    for body in [fixture("garbage.txt"), fixture("not-found.json")] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .expect(1)
            .mount(&server)
            .await;

        let error = load(&server.uri(), "master", no_env())
            .await
            .expect_err("bad body");
        assert!(matches!(error, ConfigError::BadResponse { .. }), "{error}");
        assert!(error.to_string().contains(&server.uri()), "{error}");
    }
}

#[tokio::test]
async fn an_undecrypted_value_is_rejected_naming_its_key() {
    let server = serve(
        "/accountservice/test/master",
        json("undecrypted-secret.json"),
    )
    .await;

    let error = load(&server.uri(), "master", no_env())
        .await
        .expect_err("cipher rejected");
    let message = error.to_string();
    assert!(
        matches!(&error, ConfigError::Undecrypted { key, .. } if key == "amqp_server_url"),
        "{message}"
    );
    assert!(message.contains("accountservice-test.yml"), "{message}");
    assert!(!message.contains("AQB5"), "{message}");
}

#[tokio::test]
async fn a_missing_key_is_named_with_the_sources_consulted() {
    let server = serve(
        "/accountservice/dev/master",
        json("accountservice-dev-go-original.json"),
    )
    .await;

    let error = loader(&server.uri(), "master", "dev", no_env())
        .load_at_startup::<TestSettings>()
        .await
        .expect_err("no amqp_server_url");
    let message = error.to_string();
    assert!(
        matches!(&error, ConfigError::Invalid { key, .. } if key == "amqp_server_url"),
        "{message}"
    );
    assert!(
        message.contains("file:/config-repo/accountservice-dev.yml"),
        "{message}"
    );
    assert!(message.contains("environment"), "{message}");
    assert!(!message.contains("broker_url"), "{message}");
}

#[tokio::test]
async fn a_profile_the_server_has_no_file_for_is_an_error_at_once() {
    let server = MockServer::start().await;
    // Spring answers an unknown profile with the application's plain files only.
    Mock::given(method("GET"))
        .and(path("/accountservice/test,locl/master"))
        .respond_with(json("accountservice-test.json"))
        .expect(1)
        .mount(&server)
        .await;
    // ... and an application it has no file for with no property source at all.
    let empty = serde_json::json!({
        "name": "accountservice", "profiles": ["dev"], "label": null,
        "version": null, "state": null, "propertySources": []
    });
    Mock::given(method("GET"))
        .and(path("/accountservice/dev/master"))
        .respond_with(ResponseTemplate::new(200).set_body_json(empty))
        .expect(1)
        .mount(&server)
        .await;
    let url = with_password(&server);
    let shown = url.replace("secret", "***");

    let error = loader(&url, "master", "test,locl", no_env())
        .load_at_startup::<TestSettings>()
        .await
        .expect_err("locl has no file");
    assert!(
        matches!(&error, ConfigError::ProfileNotServed { profile, .. } if profile == "locl"),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "no configuration file matches profile \"locl\" for accountservice on config server \
             {shown}/accountservice/test,locl/master; property sources served: \
             https://example.org/goblog-config.git/accountservice-test.yml, \
             https://example.org/goblog-config.git/application.yml; \
             check --profile and --config-branch"
        )
    );

    let error = loader(&url, "master", "dev", no_env())
        .load_at_startup::<TestSettings>()
        .await
        .expect_err("no property source");
    let message = error.to_string();
    assert!(
        message.contains("property sources served: none"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}

#[tokio::test]
async fn a_refused_password_is_named_as_what_to_check() {
    let server = serve("/accountservice/test/master", ResponseTemplate::new(401)).await;

    let error = load(&with_password(&server), "master", no_env())
        .await
        .expect_err("unauthorized");
    let message = error.to_string();
    assert!(message.contains("HTTP 401 Unauthorized"), "{message}");
    assert!(
        message.contains("check the user and password in --config-server-url"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}
