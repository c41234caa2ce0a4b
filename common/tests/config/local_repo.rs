//! The local folder: Spring's native layout and precedence, and the project's own config-repo.

use std::path::Path;

use common::config::{ConfigError, ConfigSource, LocalRepo, SettingsLoader, Snapshot};

use crate::helpers::{TempRepo, TestSettings, no_env};

fn loader(dir: &Path, application: &str, profile: &str) -> SettingsLoader {
    SettingsLoader::with_source(
        ConfigSource::Local(LocalRepo::new(dir)),
        application,
        profile,
        no_env(),
    )
}

async fn load(dir: &Path, profile: &str) -> Result<Snapshot<TestSettings>, ConfigError> {
    loader(dir, "svc", profile).load_at_startup().await
}

#[tokio::test]
async fn the_most_specific_file_wins_and_lists_are_replaced_whole() {
    let repo = TempRepo::new(&[
        (
            "application.yml",
            "server_name: application\nserver_port: 1\namqp_server_url: amqp://application\n\
             vip_account_ids: ['1', '2']\nquotes:\n  url: http://application\n  timeout_ms: 5\n",
        ),
        (
            "svc.yml",
            "server_name: svc\nserver_port: 2\namqp_server_url: amqp://svc\n",
        ),
        (
            "application-test.yml",
            "server_name: application-test\nserver_port: 3\nvip_account_ids: ['3']\n",
        ),
        ("svc-test.yml", "server_name: svc-test\n"),
        ("other-test.yml", "server_name: other\n"),
    ]);

    let snapshot = load(repo.path(), "test").await.expect("loads");
    let settings = snapshot.settings;
    assert_eq!(settings.server_name, "svc-test");
    assert_eq!(settings.server_port, 3);
    assert_eq!(settings.amqp_server_url, "amqp://svc");
    assert_eq!(settings.vip_account_ids, ["3"]);
    assert_eq!(settings.quotes.url, "http://application");
    assert_eq!(settings.quotes.timeout_ms, 5);
    let sources = &snapshot.source.info.property_sources;
    assert_eq!(sources.len(), 4, "{sources:?}");
    assert!(sources[0].ends_with("svc-test.yml"), "{sources:?}");
    assert!(sources[3].ends_with("application.yml"), "{sources:?}");

    repo.write("application-prod.yml", "log_level: warn\n");
    let plain = load(repo.path(), "prod")
        .await
        .expect("loads with the shared profile file only");
    assert_eq!(plain.settings.server_name, "svc");
    assert_eq!(plain.settings.vip_account_ids, ["1", "2"]);
}

#[tokio::test]
async fn a_profile_without_a_file_of_its_own_is_an_error_listing_the_profiles() {
    let repo = TempRepo::new(&[
        ("application.yml", "server_port: 1\n"),
        ("svc.yml", "server_name: svc\n"),
        ("svc-dev.yml", "server_name: dev\n"),
        ("svc-test.yml", "server_name: test\n"),
        ("application-local.yml", "server_name: local\n"),
        ("other-prod.yml", "server_name: other\n"),
    ]);

    for profile in ["locl", "dev,locl", "prod"] {
        let error = load(repo.path(), profile).await.expect_err(profile);
        let missing = profile.rsplit(',').next().unwrap_or(profile);
        assert_eq!(
            error.to_string(),
            format!(
                "no configuration file matches profile \"{missing}\" for svc in {}/; \
                 available profiles: dev, local, test",
                repo.path().display()
            ),
            "{profile}"
        );
    }
}

#[tokio::test]
async fn a_missing_folder_is_named_with_the_working_directory_and_the_flag() {
    let repo = TempRepo::new(&[]);
    let missing = repo.path().join("config-repo");

    let error = load(&missing, "local").await.expect_err("no folder");
    assert!(matches!(error, ConfigError::NoLocalRepo { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("folder {} does not exist", missing.display())),
        "{message}"
    );
    assert!(message.contains("--config-repo"), "{message}");
}

#[tokio::test]
async fn a_folder_without_files_for_the_service_is_a_clear_error() {
    let repo = TempRepo::new(&[("other.yml", "server_port: 1\n")]);

    let error = load(repo.path(), " , ").await.expect_err("nothing to load");
    assert!(matches!(error, ConfigError::NoLocalFiles { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&repo.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("svc.yml"), "{message}");
    assert!(message.contains("--config-repo"), "{message}");
}

#[tokio::test]
async fn a_broken_file_is_named() {
    let repo = TempRepo::new(&[
        ("svc.yml", "server_port: [unclosed\n"),
        ("svc-test.yml", "server_name: x\n"),
    ]);

    let error = load(repo.path(), "test").await.expect_err("broken YAML");
    assert!(matches!(error, ConfigError::LocalFile { .. }), "{error}");
    assert!(error.to_string().contains("svc.yml"), "{error}");
}

#[tokio::test]
async fn the_projects_config_repo_configures_both_services_in_every_profile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config-repo");
    for (application, port) in [("accountservice", 6767), ("vipservice", 6868)] {
        for profile in ["dev", "test", "local"] {
            let settings = loader(&dir, application, profile)
                .load_at_startup::<TestSettings>()
                .await
                .unwrap_or_else(|error| panic!("{application} {profile}: {error}"))
                .settings;
            assert_eq!(settings.server_port, port, "{application} {profile}");
            assert!(
                settings.server_name.to_lowercase().contains(profile),
                "{application} {profile}: {}",
                settings.server_name
            );
            assert_eq!(settings.config_event_bus, "springCloudBus");
        }
        let local = loader(&dir, application, "local")
            .load_at_startup::<TestSettings>()
            .await
            .expect("local profile");
        assert_eq!(
            local.settings.amqp_server_url,
            "amqp://guest:guest@127.0.0.1:5672/%2f"
        );
    }
}
