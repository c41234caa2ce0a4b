//! The settings layers: errors that name the key, validation, and reloads.

use common::bootstrap::ServiceSettings;
use common::config::{BusEvent, ConfigError, EnvVars, Refreshable, Settings};
use serde::{Deserialize, Serialize};

use crate::helpers::{
    Quotes, TempRepo, TestSettings, VALID, fixture, local_loader as loader, no_env,
};

async fn load_error(content: &str, env: EnvVars) -> ConfigError {
    load_error_as::<TestSettings>(content, env).await
}

async fn load_error_as<S: Settings>(content: &str, env: EnvVars) -> ConfigError {
    let repo = TempRepo::new(&[("accountservice-local.yml", content)]);
    loader(&repo, env)
        .load_at_startup::<S>()
        .await
        .err()
        .expect("invalid settings")
}

#[tokio::test]
async fn a_missing_key_is_named_with_every_source_consulted() {
    let error = load_error(
        "server_port: 6767\nserver_name: x\n",
        EnvVars::from_pairs([("GOBLOG_SERVER_NAME".to_owned(), "y".to_owned())]),
    )
    .await;
    let message = error.to_string();
    assert!(
        matches!(&error, ConfigError::Invalid { key, .. } if key == "amqp_server_url"),
        "{message}"
    );
    assert!(message.contains("is missing"), "{message}");
    assert!(message.contains("TestSettings"), "{message}");
    assert!(message.contains("accountservice-local.yml"), "{message}");
    assert!(message.contains("GOBLOG_SERVER_NAME"), "{message}");
}

#[tokio::test]
async fn a_services_missing_or_wrong_key_is_named_in_either_part() {
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default)]
    struct Own {
        quotes: Quotes,
    }
    impl Settings for Own {}

    let error = load_error_as::<ServiceSettings<Own>>("server_name: x\n", no_env()).await;
    let message = error.to_string();
    assert!(
        matches!(&error, ConfigError::Invalid { key, .. } if key == "server_port"),
        "{message}"
    );
    assert!(
        message.starts_with("setting `server_port` is missing"),
        "{message}"
    );

    let wrong = format!("{VALID}quotes:\n  timeout_ms: soon\n");
    let error = load_error_as::<ServiceSettings<Own>>(&wrong, no_env()).await;
    let message = error.to_string();
    assert!(
        matches!(&error, ConfigError::Invalid { key, .. } if key == "quotes.timeout_ms"),
        "{message}"
    );
    assert!(
        message.contains("(from file:") && message.contains("accountservice-local.yml)"),
        "{message}"
    );
}

#[tokio::test]
async fn a_port_that_is_not_a_port_is_named() {
    for port in ["70000", "-1", "http"] {
        let error = load_error(&VALID.replace("6767", port), no_env()).await;
        assert!(
            matches!(&error, ConfigError::Invalid { key, .. } if key == "server_port"),
            "{port}: {error}"
        );
    }
    let error = load_error(
        VALID,
        EnvVars::from_pairs([("GOBLOG_SERVER_PORT".to_owned(), "99999".to_owned())]),
    )
    .await;
    assert!(
        matches!(&error, ConfigError::Invalid { key, .. } if key == "server_port"),
        "{error}"
    );
}

#[tokio::test]
async fn the_validation_hook_stops_a_wrong_value() {
    let error = load_error(&VALID.replace("amqp://guest:guest@", "http://"), no_env()).await;
    let message = error.to_string();
    assert!(
        matches!(&error, ConfigError::Invalid { key, .. } if key == "amqp_server_url"),
        "{message}"
    );
    assert!(message.contains("amqp://"), "{message}");
}

#[tokio::test]
async fn reloads_from_the_source_and_keeps_bus_environment_changes() {
    let repo = TempRepo::new(&[("accountservice-local.yml", VALID)]);
    let loader = loader(&repo, no_env());
    let settings = Refreshable::new(
        loader
            .load_at_startup::<TestSettings>()
            .await
            .expect("loads"),
    );

    let BusEvent::EnvironmentChange { values, .. } =
        BusEvent::parse(&fixture("env-change.json")).expect("parses")
    else {
        panic!("env-change.json is an EnvironmentChangeRemoteApplicationEvent");
    };
    let changed = loader
        .apply_changes(&settings.current(), values)
        .expect("applies");
    let changes = settings.replace(changed);
    assert_eq!(changes.applied, ["server_name"]);
    assert_eq!(
        settings.current().settings.server_name,
        "Accountservice CHANGED"
    );

    repo.write(
        "accountservice-local.yml",
        &format!(
            "{}vip_account_ids: ['1', '2']\n",
            VALID.replace("6767", "7000")
        ),
    );
    let reloaded = loader.reload(&settings.current()).await.expect("reloads");
    let changes = settings.replace(reloaded);
    assert_eq!(
        changes.applied,
        ["vip_account_ids[0]", "vip_account_ids[1]"]
    );
    assert_eq!(changes.needs_restart, ["server_port"]);
    let current = settings.current();
    assert_eq!(current.settings.server_name, "Accountservice CHANGED");
    assert_eq!(current.settings.server_port, 7000);
}
