//! A settings type like the services', captured fixtures, and throwaway config folders.

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::config::{
    ConfigSource, EnvVars, InvalidSetting, LocalRepo, RetryPolicy, Settings, SettingsLoader,
};
use serde::{Deserialize, Serialize};

/// Settings shaped like accountservice's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSettings {
    pub server_port: u16,
    pub server_name: String,
    pub amqp_server_url: String,
    #[serde(default = "default_bus")]
    pub config_event_bus: String,
    #[serde(default = "default_vip_account_ids")]
    pub vip_account_ids: Vec<String>,
    #[serde(default)]
    pub quotes: Quotes,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quotes {
    pub url: String,
    pub timeout_ms: u64,
}

impl Default for Quotes {
    fn default() -> Self {
        Self {
            url: "http://quotes-service:8080/api/quote".into(),
            timeout_ms: 1000,
        }
    }
}

fn default_bus() -> String {
    "springCloudBus".into()
}

fn default_vip_account_ids() -> Vec<String> {
    vec!["10000".into()]
}

impl Settings for TestSettings {
    const RESTART_KEYS: &'static [&'static str] = &["server_port", "amqp_server_url"];

    fn validate(&self) -> Result<(), InvalidSetting> {
        if self.amqp_server_url.starts_with("amqp://")
            || self.amqp_server_url.starts_with("amqps://")
        {
            Ok(())
        } else {
            Err(InvalidSetting::new(
                "amqp_server_url",
                "must be an amqp:// or amqps:// URL",
            ))
        }
    }
}

/// The keys every service must have, valid.
pub const VALID: &str = "server_port: 6767\nserver_name: Accountservice LOCAL\n\
                         amqp_server_url: amqp://guest:guest@127.0.0.1:5672/%2f\n";

/// accountservice with the `local` profile from `repo`.
pub fn local_loader(repo: &TempRepo, env: EnvVars) -> SettingsLoader {
    SettingsLoader::with_source(
        ConfigSource::Local(LocalRepo::new(repo.path())),
        "accountservice",
        "local",
        env,
    )
}

/// A captured fixture from `tests/fixtures/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()))
}

/// Retries fast enough for a test.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        give_up_after: Duration::from_millis(100),
    }
}

/// No `GOBLOG_*` variable, whatever the test process has.
pub fn no_env() -> EnvVars {
    EnvVars::from_pairs([])
}

/// A config folder in the temporary directory, removed on drop.
pub struct TempRepo {
    dir: PathBuf,
}

impl TempRepo {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("goblog-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let repo = Self { dir };
        for (name, content) in files {
            repo.write(name, content);
        }
        repo
    }

    pub fn write(&self, name: &str, content: &str) {
        std::fs::write(self.dir.join(name), content).expect("write config file");
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TempRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
