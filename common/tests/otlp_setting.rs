//! Trace export turned on by the setting `telemetry.otlp_endpoint` (no `OTEL_*` variable):
//! a service's spans reach an OTLP/HTTP receiver (wiremock) at the endpoint's `/v1/traces`
//! when the service closes, and a value that is not an http(s) URL stops the start with an
//! error naming the key. Its own test binary: the first service installs the process's
//! subscriber, from its settings.

use std::path::Path;

use common::bootstrap::{BootstrapError, Launch, Service};
use common::config::{ConfigArgs, ConfigError, EnvVars, Settings};
use serde::{Deserialize, Serialize};
use test_support::{Cleanup, amqp_url, unique};
use tokio::sync::oneshot;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Own {}

impl Settings for Own {}

fn launch(config_repo: &Path, yaml: &str) -> Launch {
    std::fs::write(config_repo.join("otlpsvc-it.yml"), yaml).expect("config written");
    Launch {
        application: "otlpsvc",
        version: "9.9.9",
        config: ConfigArgs {
            config_server_url: None,
            profile: "it".into(),
            config_branch: "master".into(),
            config_repo: config_repo.to_owned(),
        },
        env: EnvVars::from_pairs([]),
    }
}

#[tokio::test]
async fn the_setting_turns_export_on_and_a_bad_value_is_named() {
    for variable in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        assert!(
            std::env::var_os(variable).is_none(),
            "{variable} is set: this test checks the setting alone"
        );
    }
    let cleanup = Cleanup::new();
    let bus = cleanup.exchange(unique("springCloudBus"));
    let dir = tempfile::tempdir().expect("temp dir");
    let base = format!(
        "server_port: 0\nserver_name: otlp-it\namqp_server_url: {}\nconfig_event_bus: {bus}\n",
        amqp_url()
    );

    let refused = Service::<Own>::start(launch(
        dir.path(),
        &format!("{base}telemetry:\n  otlp_endpoint: collector:4318\n"),
    ))
    .await
    .err()
    .expect("a start with a bad endpoint fails");
    match &refused {
        BootstrapError::Config(ConfigError::Invalid { key, .. }) => {
            assert_eq!(key, "telemetry.otlp_endpoint", "{refused}");
        }
        other => panic!("not the setting's error: {other}"),
    }

    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    let mut service = Service::<Own>::start(launch(
        dir.path(),
        &format!("{base}telemetry:\n  otlp_endpoint: {}/\n", collector.uri()),
    ))
    .await
    .expect("starts");
    let address = format!("http://{}/info", service.local_addr());
    let (stop, stopping) = oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        service
            .serve(axum::Router::new(), async {
                let _ = stopping.await;
            })
            .await
            .expect("serves");
        service.close().await.expect("closes");
    });
    let status = reqwest::get(&address).await.expect("answers").status();
    assert_eq!(status, 200);
    let _ = stop.send(());
    served.await.expect("the service task");

    let exported = collector.received_requests().await.expect("recorded");
    let contains = |body: &[u8], text: &str| body.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(
        exported.iter().any(|request| {
            request.url.path() == "/v1/traces"
                && contains(&request.body, "otlpsvc")
                && contains(&request.body, "GET /info")
        }),
        "no export of the request's span to /v1/traces: {:?}",
        exported.iter().map(|r| r.url.path()).collect::<Vec<_>>()
    );
}
