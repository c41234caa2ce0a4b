//! The VIP notification published when a VIP account is read.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `{"accountId": "...", "readAt": "<RFC 3339 UTC>"}`, the body published to `vip_queue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipNotification {
    /// The VIP account that was read.
    #[serde(rename = "accountId")]
    pub account_id: String,
    /// When it was read.
    #[serde(rename = "readAt", with = "rfc3339_utc")]
    pub read_at: DateTime<Utc>,
}

impl VipNotification {
    /// A notification that `account_id` was read just now.
    pub fn now(account_id: impl Into<String>) -> Self {
        Self {
            account_id: account_id.into(),
            read_at: Utc::now(),
        }
    }
}

/// RFC 3339 in UTC with a `Z` and as many fractional digits as needed (0, 3, 6 or 9), spelled
/// out here rather than left to chrono's default so the wire format is explicit.
mod rfc3339_utc {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn serializes_as_the_go_original_with_rfc3339_utc() {
        let read_at = Utc.with_ymd_and_hms(2026, 11, 24, 22, 3, 52).unwrap()
            + chrono::Duration::milliseconds(123);
        let notification = VipNotification {
            account_id: "10000".into(),
            read_at,
        };
        let json = serde_json::to_string(&notification).unwrap();
        assert_eq!(
            json,
            r#"{"accountId":"10000","readAt":"2026-11-24T22:03:52.123Z"}"#
        );
        let back: VipNotification = serde_json::from_str(&json).unwrap();
        assert_eq!(back, notification);
    }

    #[test]
    fn now_is_utc_now() {
        let before = Utc::now();
        let notification = VipNotification::now("10000");
        assert_eq!(notification.account_id, "10000");
        assert!(notification.read_at >= before && notification.read_at <= Utc::now());
    }
}
