//! [`DatabaseSettings`]: where a service's database is, under the key its role names.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::DatabaseError;
use crate::config::InvalidSetting;
use crate::redact::redact_url;
use crate::secret::SecretUrl;

/// What a database is for in its service: the settings key it is configured under and its
/// defaults.
pub trait DatabaseRole: Debug + Clone + PartialEq + Send + Sync + 'static {
    /// The settings section, e.g. `offers`.
    const SETTING: &'static str;
    /// The URL when none is set, e.g. `sqlite://data/vipservice.db?mode=rwc`.
    const DEFAULT_URL: &'static str;
    /// Connections a replica opens at most when the setting says nothing.
    const DEFAULT_MAX_CONNECTIONS: u32;
}

/// The keys of a database section (`offers.database_url`, ..).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, bound = "")]
pub struct DatabaseSettings<R: DatabaseRole> {
    /// `sqlite://PATH?mode=rwc` (the file and its folder are created; every replica on the
    /// host opens the same file) or `postgres://USER@HOST:PORT/DB` (replicas on several
    /// hosts). Printed with its password redacted.
    pub database_url: SecretUrl,
    /// A file holding the password of a `postgres://` URL (a Swarm secret), so that the URL
    /// in the settings carries none. Its trailing newline is ignored.
    pub database_password_file: Option<PathBuf>,
    /// Connections this replica opens at most.
    pub max_connections: u32,
    #[serde(skip)]
    role: PhantomData<R>,
}

impl<R: DatabaseRole> Default for DatabaseSettings<R> {
    fn default() -> Self {
        Self::at(R::DEFAULT_URL)
    }
}

impl<R: DatabaseRole> DatabaseSettings<R> {
    /// The database at `url`, the other keys at their defaults.
    pub fn at(url: impl Into<SecretUrl>) -> Self {
        Self {
            database_url: url.into(),
            database_password_file: None,
            max_connections: R::DEFAULT_MAX_CONNECTIONS,
            role: PhantomData,
        }
    }

    /// A `sqlite:` or `postgres://` URL, and at least one connection.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let url = self.database_url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(InvalidSetting::new(
                format!("{}.database_url", R::SETTING),
                format!(
                    "must be a sqlite: or postgres:// URL, not {:?}",
                    redact_url(url)
                ),
            ));
        }
        if self.max_connections == 0 {
            return Err(InvalidSetting::new(
                format!("{}.max_connections", R::SETTING),
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// The URL to connect with: the password file's content put into it, if one is set.
    pub fn url_with_password(&self) -> Result<String, DatabaseError> {
        let Some(path) = &self.database_password_file else {
            return Ok(self.database_url.expose().to_owned());
        };
        let password =
            std::fs::read_to_string(path).map_err(|source| DatabaseError::PasswordFile {
                setting: R::SETTING,
                path: path.clone(),
                source,
            })?;
        let invalid = |reason: &str| DatabaseError::Url {
            setting: R::SETTING,
            url: self.database_url.redacted(),
            source: sqlx::Error::Configuration(reason.into()),
        };
        let mut url = url::Url::parse(self.database_url.expose())
            .map_err(|_| invalid("not a URL to put the password file's password into"))?;
        url.set_password(Some(password.trim_end_matches(['\r', '\n'])))
            .map_err(|()| invalid("this URL cannot carry a password"))?;
        Ok(url.into())
    }
}
