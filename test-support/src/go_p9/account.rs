//! Go accountservice's side of `vip_queue`: `notifyVIP` and `MessagingClient.PublishOnQueue`
//! (`accountservice/service/handlers.go`, `common/messaging/messagingclient.go`).

use std::fmt::Write as _;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lapin::options::BasicPublishOptions;
use lapin::protocol::constants::REPLY_SUCCESS;
use lapin::{BasicProperties, Connection};

use super::{GoP9Error, close_connection, connect, declare_go_queue, open_channel};

/// Go's accountservice as a publisher: one connection, shared by every publish.
///
/// Go publishes only for account `"10000"` (hard-coded in `notifyVIP`), from a goroutine, after
/// the database read; a test that stands in for the HTTP side decides when to call
/// [`notify_vip`](Self::notify_vip).
pub struct GoAccountService {
    connection: Connection,
}

impl GoAccountService {
    /// Connects as Go's `ConnectToBroker` does (Go panics where this returns the error).
    pub async fn connect(amqp_url: &str) -> Result<Self, GoP9Error> {
        Ok(Self {
            connection: connect(amqp_url).await?,
        })
    }

    /// Publishes a VIP notification for `account_id` to `queue` (Go: `vip_queue`), read now, the
    /// way `notifyVIP` does; returns the body it sent.
    pub async fn notify_vip(&self, queue: &str, account_id: &str) -> Result<String, GoP9Error> {
        let body = vip_notification(account_id, SystemTime::now());
        self.publish_on_queue(queue, body.as_bytes()).await?;
        Ok(body)
    }

    /// Go's `PublishOnQueue(body, queue)`: on a new channel, declare `queue` (non-durable,
    /// classic, no arguments), publish `body` to the default exchange with the queue's name as
    /// routing key (mandatory and immediate off, no confirms), with the content type
    /// `application/json` as its only property (so transient, no message id, no headers), then
    /// close the channel with 200.
    ///
    /// Go ignores the declare's error, then fails to publish on the channel the broker closed
    /// and prints that; here the declare's refusal itself is returned (a 406 when `queue`
    /// exists with other attributes), and the message is lost just the same. The connection
    /// stays usable, as the Go process keeps running.
    pub async fn publish_on_queue(&self, queue: &str, body: &[u8]) -> Result<(), GoP9Error> {
        let channel = open_channel(&self.connection).await?;
        let routing_key = declare_go_queue(&channel, queue).await?;
        let properties = BasicProperties::default().with_content_type("application/json".into());
        let published = channel
            .basic_publish(
                "".into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .map(drop)
            .map_err(GoP9Error::at("basic.publish"));
        // Go's deferred `ch.Close()`: reply 200 with no text, its error ignored.
        let _ = channel.close(REPLY_SUCCESS, "".into()).await;
        published
    }

    /// Closes the connection. Dropping the stand-in closes it as well, without waiting.
    pub async fn close(self) -> Result<(), GoP9Error> {
        close_connection(&self.connection).await
    }
}

/// The body Go's `notifyVIP` sends: `json.Marshal(VipNotification{AccountId, ReadAt})` with
/// `ReadAt = time.Now().UTC().String()`, e.g.
/// `{"accountId":"10000","readAt":"2017-02-15 20:06:27.033757223 +0000 UTC"}`.
pub fn vip_notification(account_id: &str, read_at: SystemTime) -> String {
    format!(
        "{{\"accountId\":{},\"readAt\":{}}}",
        go_json_string(account_id),
        go_json_string(&go_time_string(read_at))
    )
}

/// Go's `time.Time.String()` of a UTC time (layout `2006-01-02 15:04:05.999999999 -0700 MST`):
/// the fraction of a second loses its trailing zeros, and disappears when it is zero. `UTC()`
/// drops the monotonic reading, so there is no ` m=+…` suffix.
pub fn go_time_string(at: SystemTime) -> String {
    let at: DateTime<Utc> = at.into();
    let mut text = at.format("%Y-%m-%d %H:%M:%S").to_string();
    // chrono counts a leap second as nanoseconds past 1e9; Go has no leap seconds.
    let nanos = at.timestamp_subsec_nanos() % 1_000_000_000;
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push_str(" +0000 UTC");
    text
}

/// A JSON string as Go's `encoding/json` (of 2017) writes it: HTML-safe, so `<`, `>` and `&`
/// are escaped too, as are U+2028 and U+2029; control characters other than `\n`, `\r` and `\t`
/// are `\u00xx`.
fn go_json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    /// 2017-02-15 20:06:27 UTC, the second of the notes' example.
    const SECOND: u64 = 1_487_189_187;

    fn at(nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(SECOND, nanos)
    }

    #[test]
    fn times_are_written_as_go_writes_them() {
        assert_eq!(
            go_time_string(at(33_757_223)),
            "2017-02-15 20:06:27.033757223 +0000 UTC"
        );
        assert_eq!(go_time_string(at(0)), "2017-02-15 20:06:27 +0000 UTC");
        assert_eq!(
            go_time_string(at(500_000_000)),
            "2017-02-15 20:06:27.5 +0000 UTC"
        );
        assert_eq!(
            go_time_string(at(1_000)),
            "2017-02-15 20:06:27.000001 +0000 UTC"
        );
        assert_eq!(
            go_time_string(UNIX_EPOCH + Duration::from_nanos(7)),
            "1970-01-01 00:00:00.000000007 +0000 UTC"
        );
    }

    #[test]
    fn the_notification_is_the_notes_example() {
        assert_eq!(
            vip_notification("10000", at(33_757_223)),
            r#"{"accountId":"10000","readAt":"2017-02-15 20:06:27.033757223 +0000 UTC"}"#
        );
    }

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        assert_eq!(go_json_string("10000"), r#""10000""#);
        assert_eq!(go_json_string("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_json_string("<&>"), r#""\u003c\u0026\u003e""#);
        assert_eq!(
            go_json_string("\n\r\t\u{8}\u{1f}"),
            r#""\n\r\t\u0008\u001f""#
        );
        assert_eq!(go_json_string("\u{2028}é"), "\"\\u2028é\"");
    }
}
