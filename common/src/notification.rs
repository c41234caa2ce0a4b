//! The VIP notification `{"accountId": "...", "readAt": "..."}` that accountservice publishes
//! on `vip_queue` and vipservice consumes, and the account id rule both services apply.
//!
//! goblog-rs writes `readAt` in RFC 3339 UTC; the Go original wrote Go's `time.Time.String()`
//! (`2017-02-15 20:06:27.033757223 +0000 UTC`, possibly followed by a monotonic clock reading
//! such as `m=+0.000123`). Decoding accepts both.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// The work queue notifications travel on, as in the Go original.
pub const VIP_QUEUE: &str = "vip_queue";
/// The AMQP `type` of a notification message.
pub const MESSAGE_TYPE: &str = "VipNotification";

/// The longest account id accepted.
pub const MAX_ACCOUNT_ID_LEN: usize = 64;
/// How much of a rejected value an error message repeats.
const ECHO_LIMIT: usize = 80;

/// A valid VIP notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipNotification {
    /// The VIP account that was read.
    #[serde(rename = "accountId")]
    pub account_id: String,
    /// When it was read.
    #[serde(rename = "readAt", serialize_with = "rfc3339_utc")]
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

/// RFC 3339 in UTC with a `Z` and as many fractional digits as needed.
fn rfc3339_utc<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// Why a body is not a valid notification.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, truncated, not an object, or a field of the wrong type.
    #[error("not a JSON notification object: {0}")]
    Malformed(serde_json::Error),
    /// No `accountId`, or `null`.
    #[error("accountId is missing")]
    MissingAccountId,
    /// `accountId` breaks the account id rule.
    #[error("accountId {0:?} is not 1 to 64 characters of [A-Za-z0-9_-]")]
    InvalidAccountId(String),
    /// No `readAt`, or `null`.
    #[error("readAt is missing")]
    MissingReadAt,
    /// `readAt` in neither accepted format.
    #[error(
        "readAt {0:?} is neither RFC 3339 nor Go's time.Time format (2006-01-02 15:04:05.999999999 -0700 MST)"
    )]
    InvalidReadAt(String),
}

/// The body as it arrives, before validation.
#[derive(Deserialize)]
struct RawNotification {
    #[serde(rename = "accountId")]
    account_id: Option<String>,
    #[serde(rename = "readAt")]
    read_at: Option<String>,
}

/// Decodes and validates a message body.
pub fn decode(body: &[u8]) -> Result<VipNotification, DecodeError> {
    let raw: RawNotification = serde_json::from_slice(body).map_err(DecodeError::Malformed)?;
    let account_id = raw.account_id.ok_or(DecodeError::MissingAccountId)?;
    if !is_valid_account_id(&account_id) {
        return Err(DecodeError::InvalidAccountId(echo(&account_id)));
    }
    let read_at = raw.read_at.ok_or(DecodeError::MissingReadAt)?;
    let read_at =
        parse_read_at(&read_at).ok_or_else(|| DecodeError::InvalidReadAt(echo(&read_at)))?;
    Ok(VipNotification {
        account_id,
        read_at,
    })
}

/// Whether `id` is a well-formed account id: 1 to 64 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_account_id(id: &str) -> bool {
    (1..=MAX_ACCOUNT_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses a `readAt` in RFC 3339 or in Go's `time.Time.String()` format.
pub fn parse_read_at(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .or_else(|| parse_go_time(text))
        .map(|at| at.with_timezone(&Utc))
}

/// Go's `2006-01-02 15:04:05.999999999 -0700 MST`, optionally followed by ` m=±<seconds>`.
/// The zone name is redundant with the numeric offset and is only checked for shape.
fn parse_go_time(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
    let mut parts: Vec<&str> = text.split(' ').collect();
    if parts
        .last()
        .is_some_and(|last| last.starts_with("m=+") || last.starts_with("m=-"))
    {
        parts.pop();
    }
    let (date, time, offset) = match parts.as_slice() {
        [date, time, offset] => (date, time, offset),
        [date, time, offset, zone] if is_zone_name(zone) => (date, time, offset),
        _ => return None,
    };
    DateTime::parse_from_str(
        &format!("{date} {time} {offset}"),
        "%Y-%m-%d %H:%M:%S%.f %z",
    )
    .ok()
}

/// A zone as Go prints it: an abbreviation (`UTC`, `CET`) or, lacking one, an offset (`+0530`).
fn is_zone_name(zone: &str) -> bool {
    !zone.is_empty()
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-')
}

/// At most [`ECHO_LIMIT`] characters of a rejected value, for an error message.
fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_LIMIT) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::path::PathBuf;

    fn fixtures_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vip-notifications")
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = fixtures_dir().join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, nanos: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
            + chrono::Duration::nanoseconds(nanos.into())
    }

    #[test]
    fn encodes_read_at_in_rfc3339_utc_and_decodes_it_back() {
        let notification = VipNotification {
            account_id: "10000".into(),
            read_at: at(2026, 11, 24, 22, 3, 52, 123_000_000),
        };
        let json = serde_json::to_string(&notification).expect("encodes");
        assert_eq!(
            json,
            r#"{"accountId":"10000","readAt":"2026-11-24T22:03:52.123Z"}"#
        );
        assert_eq!(decode(json.as_bytes()).expect("decodes"), notification);
    }

    #[test]
    fn account_ids_are_1_to_64_characters_of_a_safe_alphabet() {
        for good in ["10000", "a-B_9", &"x".repeat(64)] {
            assert!(is_valid_account_id(good), "{good}");
        }
        for bad in ["", &"x".repeat(65), "100 00", "../etc", "é"] {
            assert!(!is_valid_account_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_go_original_format_is_accepted() {
        let notification = decode(&fixture("go-original.json")).unwrap();
        assert_eq!(notification.account_id, "10000");
        assert_eq!(notification.read_at, at(2017, 2, 15, 20, 6, 27, 33_757_223));
    }

    #[test]
    fn rfc3339_is_accepted() {
        let notification = decode(&fixture("rfc3339.json")).unwrap();
        assert_eq!(notification.account_id, "10000");
        assert_eq!(
            notification.read_at,
            at(2026, 11, 24, 22, 3, 52, 123_456_789)
        );
    }

    #[test]
    fn poison_fixtures_are_rejected_with_their_reason() {
        let bad_time = decode(&fixture("poison-bad-time.json")).unwrap_err();
        assert!(matches!(&bad_time, DecodeError::InvalidReadAt(v) if v == "yesterday-ish"));
        assert!(bad_time.to_string().contains("yesterday-ish"), "{bad_time}");

        let no_account = decode(&fixture("poison-no-account.json")).unwrap_err();
        assert!(matches!(no_account, DecodeError::MissingAccountId));
        assert_eq!(no_account.to_string(), "accountId is missing");

        let truncated = decode(&fixture("poison-truncated.json")).unwrap_err();
        assert!(matches!(truncated, DecodeError::Malformed(_)));
        assert!(truncated.to_string().contains("EOF"), "{truncated}");
    }

    #[test]
    fn every_fixture_is_accepted_or_rejected_as_its_name_says() {
        let mut seen = 0;
        for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let result = decode(&std::fs::read(&path).unwrap());
            if name.starts_with("poison-") {
                assert!(result.is_err(), "{name} was accepted");
            } else {
                assert!(result.is_ok(), "{name}: {}", result.unwrap_err());
            }
            seen += 1;
        }
        assert!(seen >= 5, "only {seen} fixtures found");
    }

    #[test]
    fn go_format_variants() {
        let expected = at(2017, 2, 15, 20, 6, 27, 33_757_223);
        for text in [
            "2017-02-15 20:06:27.033757223 +0000 UTC",
            "2017-02-15 20:06:27.033757223 +0000 UTC m=+0.000123456",
            "2017-02-15 21:06:27.033757223 +0100 CET",
            "2017-02-16 01:36:27.033757223 +0530 +0530",
            "2017-02-15 20:06:27.033757223 +0000",
        ] {
            assert_eq!(parse_read_at(text), Some(expected), "{text}");
        }
        assert_eq!(
            parse_read_at("2017-02-15 20:06:27 +0000 UTC"),
            Some(at(2017, 2, 15, 20, 6, 27, 0))
        );
        for text in [
            "",
            "2017-02-15",
            "2017-02-15 20:06:27.033757223",
            "2017-02-15 20:06:27.033757223 +0000 UTC extra",
            "2017-02-15 20:06:27.033757223 +0000 U!C",
            "2017-02-15  20:06:27 +0000 UTC",
            "2017-02-30 20:06:27 +0000 UTC",
        ] {
            assert_eq!(parse_read_at(text), None, "{text:?}");
        }
    }

    #[test]
    fn rfc3339_with_an_offset_is_converted_to_utc() {
        assert_eq!(
            parse_read_at("2026-11-24T23:03:52+01:00"),
            Some(at(2026, 11, 24, 22, 3, 52, 0))
        );
    }

    #[test]
    fn account_id_and_field_errors() {
        let err = decode(br#"{"accountId":"","readAt":"2026-11-24T22:03:52Z"}"#).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidAccountId(_)));
        let long = "9".repeat(65);
        let body = format!(r#"{{"accountId":"{long}","readAt":"2026-11-24T22:03:52Z"}}"#);
        assert!(matches!(
            decode(body.as_bytes()),
            Err(DecodeError::InvalidAccountId(_))
        ));
        let body = br#"{"accountId":"10 000","readAt":"2026-11-24T22:03:52Z"}"#;
        assert!(matches!(
            decode(body),
            Err(DecodeError::InvalidAccountId(_))
        ));
        let body = br#"{"accountId":10000,"readAt":"2026-11-24T22:03:52Z"}"#;
        assert!(matches!(decode(body), Err(DecodeError::Malformed(_))));
        let body = br#"{"accountId":"10000"}"#;
        assert!(matches!(decode(body), Err(DecodeError::MissingReadAt)));
        let body = br#"{"accountId":"10000","readAt":null}"#;
        assert!(matches!(decode(body), Err(DecodeError::MissingReadAt)));
        assert!(matches!(decode(b"[]"), Err(DecodeError::Malformed(_))));
        assert!(matches!(decode(b""), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn a_huge_rejected_value_is_not_repeated_whole() {
        let huge = "x".repeat(10_000);
        let body = format!(r#"{{"accountId":"10000","readAt":"{huge}"}}"#);
        let message = decode(body.as_bytes()).unwrap_err().to_string();
        assert!(message.len() < 300, "{message}");
    }
}
