//! [`SecretUrl`]: a URL that may carry a password, as settings hold it. Whatever prints it
//! (`Debug`, `Display`, serializing the settings for `/info` or a log line) shows it with its
//! password hidden; only [`SecretUrl::expose`], where a connection is made, gives it whole.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use crate::redact::redact_url;

/// A URL (or a comma-separated list of them, a cluster's nodes) that may carry a password.
///
/// Serialized, it is the redacted URL: settings compared by their serialized keys (a bus
/// refresh's changes) see a change of host or user, not one of the password alone.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password: for the code that connects, never for a message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password hidden.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretUrl").field(&self.redacted()).finish()
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

impl FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self::new(url))
    }
}

impl From<&str> for SecretUrl {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for SecretUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&String> for SecretUrl {
    fn from(url: &String) -> Self {
        Self::new(url.as_str())
    }
}

impl PartialEq<str> for SecretUrl {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SecretUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::SecretUrl;

    #[test]
    fn nothing_that_prints_it_shows_the_password() {
        let url = SecretUrl::new("amqp://app:s3cret@n1:5672/,amqp://app:s3cret@n2:5672/");
        let shown = [
            format!("{url}"),
            format!("{url:?}"),
            format!("{url:#?}"),
            serde_json::to_string(&url).expect("serializes"),
        ];
        for text in shown {
            assert!(!text.contains("s3cret"), "{text}");
            assert!(text.contains("app:***@n2:5672"), "{text}");
        }
        assert_eq!(
            url.expose(),
            "amqp://app:s3cret@n1:5672/,amqp://app:s3cret@n2:5672/"
        );
    }

    #[test]
    fn it_reads_as_the_plain_string_it_was_given() {
        let url: SecretUrl = serde_json::from_str(r#""postgres://u:p@h/db""#).expect("parses");
        assert_eq!(url, "postgres://u:p@h/db");
    }
}
