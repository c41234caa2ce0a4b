//! Keys no settings type reads: each traced to the file, server source, variable or bus event
//! that sets it, with the nearest known key, and warned about again only when new.

use common::bootstrap::ServiceSettings;
use common::config::{
    ConfigSource, EnvVars, Properties, PropertySource, Refreshable, Settings, SettingsLoader,
    Snapshot, SpringCloudConfig, UnknownSetting,
};
use serde::{Deserialize, Serialize};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TempRepo, VALID, fixture, local_loader as loader, no_env, quick_retries};

/// A service's own settings, read beside the common ones as accountservice's are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Own {
    vip_account_ids: Vec<String>,
    quotes: Quotes,
}

impl Default for Own {
    fn default() -> Self {
        Self {
            vip_account_ids: vec!["10000".into()],
            quotes: Quotes::default(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Quotes {
    url: String,
    timeout_ms: u64,
}

impl Settings for Own {}

type Svc = ServiceSettings<Own>;

fn file(repo: &TempRepo, name: &str) -> String {
    repo.path().join(name).display().to_string()
}

fn lines(snapshot: &Snapshot<Svc>) -> Vec<String> {
    snapshot.unknown.iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn a_misspelt_key_is_named_with_its_file_and_the_key_meant() {
    let repo = TempRepo::new(&[
        (
            "accountservice-local.yml",
            &format!("{VALID}vip_acount_ids:\n  - \"10000\"\n  - \"10001\"\n"),
        ),
        (
            "application.yml",
            "amqp:\n  prefetchh: 10\nquotes:\n  timout_ms: 5\n  url: http://q\nlogging:\n  \
             level: info\n",
        ),
    ]);

    let snapshot = loader(&repo, no_env())
        .load_at_startup::<Svc>()
        .await
        .expect("loads");
    let application = file(&repo, "application.yml");
    assert_eq!(
        lines(&snapshot),
        [
            format!(
                "unknown setting \"vip_acount_ids\" in {}: did you mean \"vip_account_ids\"?",
                file(&repo, "accountservice-local.yml")
            ),
            format!(
                "unknown setting \"amqp.prefetchh\" in {application}: \
                 did you mean \"amqp.prefetch\"?"
            ),
            format!(
                "unknown setting \"logging.level\" in {application}: \
                 no setting has this name; it is ignored"
            ),
            format!(
                "unknown setting \"quotes.timout_ms\" in {application}: \
                 did you mean \"quotes.timeout_ms\"?"
            ),
        ]
    );
    assert_eq!(snapshot.settings.own.quotes.url, "http://q");
}

#[tokio::test]
async fn known_keys_of_either_part_raise_nothing() {
    let repo = TempRepo::new(&[(
        "accountservice-local.yml",
        &format!(
            "{VALID}vip_account_ids: []\nquotes:\n  url: http://q\n  timeout_ms: 1\namqp:\n  \
             prefetch: 5\n  queue_type: classic\nlog_level: warn\n"
        ),
    )]);
    let env = EnvVars::from_pairs([("GOBLOG_QUOTES__TIMEOUT_MS".to_owned(), "7".to_owned())]);

    let snapshot = loader(&repo, env)
        .load_at_startup::<Svc>()
        .await
        .expect("loads");
    assert_eq!(snapshot.unknown, []);
    assert_eq!(snapshot.settings.own.quotes.timeout_ms, 7);
}

#[tokio::test]
async fn every_source_that_sets_an_unknown_key_is_named_variables_and_bus_events_too() {
    let repo = TempRepo::new(&[
        (
            "accountservice-local.yml",
            &format!("{VALID}server_prot: 1\n"),
        ),
        ("application.yml", "server_prot: 2\n"),
    ]);
    let env = EnvVars::from_pairs([
        ("GOBLOG_QUOTES__TIMOUT_MS".to_owned(), "7".to_owned()),
        ("GOBLOG_EMPTY_ONE".to_owned(), String::new()),
    ]);
    let loader = loader(&repo, env);
    let snapshot = loader.load_at_startup::<Svc>().await.expect("loads");
    assert_eq!(
        lines(&snapshot),
        [
            "unknown setting \"quotes.timout_ms\" in environment variable \
             GOBLOG_QUOTES__TIMOUT_MS: did you mean \"quotes.timeout_ms\"?"
                .to_owned(),
            format!(
                "unknown setting \"server_prot\" in {}: did you mean \"server_port\"?",
                file(&repo, "accountservice-local.yml")
            ),
            format!(
                "unknown setting \"server_prot\" in {}: did you mean \"server_port\"?",
                file(&repo, "application.yml")
            ),
        ]
    );

    let change = Properties::from_sources(vec![PropertySource {
        name: "bus event e1".into(),
        properties: [("log_levl".to_owned(), serde_json::json!("warn"))].into(),
    }])
    .expect("properties");
    let changed = loader
        .apply_changes(&snapshot, change)
        .expect("applies the change");
    let new: Vec<String> = changed
        .unknown_since(&snapshot)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        new,
        ["unknown setting \"log_levl\" in bus event e1: did you mean \"log_level\"?"]
    );
}

#[tokio::test]
async fn a_reload_reports_only_the_unknown_keys_that_are_new() {
    let repo = TempRepo::new(&[(
        "accountservice-local.yml",
        &format!("{VALID}vip_acount_ids: ['1']\n"),
    )]);
    let loader = loader(&repo, no_env());
    let settings = Refreshable::new(loader.load_at_startup::<Svc>().await.expect("loads"));
    assert_eq!(settings.current().unknown.len(), 1);

    let same = loader.reload(&settings.current()).await.expect("reloads");
    assert_eq!(same.unknown_since(&settings.current()).count(), 0);
    assert_eq!(same.unknown, settings.current().unknown);
    settings.replace(same);

    repo.write(
        "accountservice-local.yml",
        &format!("{VALID}vip_acount_ids: ['1']\nserver_nmae: x\n"),
    );
    let next = loader.reload(&settings.current()).await.expect("reloads");
    let current = settings.current();
    let new: Vec<&UnknownSetting> = next.unknown_since(&current).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0].key, "server_nmae");
    assert_eq!(new[0].suggestion.as_deref(), Some("server_name"));
}

#[tokio::test]
async fn a_config_server_source_is_named_with_the_server_url_password_redacted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/accountservice/test/master"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(fixture("accountservice-test.json"), "application/json"),
        )
        .mount(&server)
        .await;
    let url = server.uri().replacen("http://", "http://user:secret@", 1);
    let client = SpringCloudConfig::new(&url, "master")
        .expect("valid URL")
        .with_retry(quick_retries());
    let loader = SettingsLoader::with_source(
        ConfigSource::Server(client),
        "accountservice",
        "test",
        no_env(),
    );

    let snapshot = loader.load_at_startup::<Svc>().await.expect("loads");
    assert_eq!(
        lines(&snapshot),
        [format!(
            "unknown setting \"logging.level\" in \
             https://example.org/goblog-config.git/application.yml on config server {}/: \
             no setting has this name; it is ignored",
            url.replace("secret", "***")
        )]
    );
}
