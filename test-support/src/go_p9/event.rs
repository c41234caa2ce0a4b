//! A Spring Cloud Bus event as Go reads it: `config.UpdateToken` and `HandleRefreshEvent`
//! (`common/config/events.go`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// The five fields Go reads from a bus event (`UpdateToken`); Go ignores every other field,
/// and the message's properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusEvent {
    /// `type`, e.g. `RefreshRemoteApplicationEvent`. Go never looks at it.
    pub kind: String,
    /// Milliseconds since the Unix epoch (a Go `int`).
    pub timestamp: i64,
    /// `originService`, e.g. `config-server:docker:8888`.
    pub origin_service: String,
    /// `destinationService`, e.g. `accountservice:**`.
    pub destination_service: String,
    /// `id`, a UUID.
    pub id: String,
}

impl BusEvent {
    /// A refresh for `destination_service` as the P9 config server sends one: type
    /// `RefreshRemoteApplicationEvent`, from `config-server:docker:8888`, now, with a new id.
    pub fn refresh(destination_service: &str) -> Self {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        Self {
            kind: "RefreshRemoteApplicationEvent".into(),
            timestamp,
            origin_service: "config-server:docker:8888".into(),
            destination_service: destination_service.into(),
            id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Whether Go's `HandleRefreshEvent` reloads the configuration of the app whose consumer tag
    /// (its app name) is `app_name`: `strings.Contains(destinationService, consumerTag)`, a plain
    /// substring test whatever the event's type. So `vipservice:**` and `xvipservice:**`
    /// match `vipservice`, and `**` (a refresh of every app, to Spring) matches nothing.
    pub fn is_for(&self, app_name: &str) -> bool {
        self.destination_service.contains(app_name)
    }

    /// The JSON Spring's bus writes, fields in its order, e.g. the Go test's sample
    /// `{"type":"RefreshRemoteApplicationEvent","timestamp":1494514362123,"originService":"config-server:docker:8888","destinationService":"accountservice:**","id":"53e61c71-…"}`.
    pub fn to_json(&self) -> String {
        let text = |s: &str| Value::from(s).to_string();
        format!(
            "{{\"type\":{},\"timestamp\":{},\"originService\":{},\"destinationService\":{},\"id\":{}}}",
            text(&self.kind),
            self.timestamp,
            text(&self.origin_service),
            text(&self.destination_service),
            text(&self.id)
        )
    }

    /// Reads `body` as Go's `json.Unmarshal(body, &UpdateToken{})` does: a missing field, or
    /// `null`, leaves the zero value (and the body `null` is an empty event); a key matches its
    /// field regardless of ASCII case; unknown fields are ignored; a value of the wrong JSON
    /// type (a `timestamp` that is not an integer fitting in 64 bits, a non-string text field)
    /// fails the whole parse, as does anything but an object. Go logs the failure and does
    /// nothing else; the returned text is not Go's word for word.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        match serde_json::from_slice(body).map_err(|error| error.to_string())? {
            Value::Null => Ok(Self::default()),
            Value::Object(fields) => Ok(Self {
                kind: text(&fields, "type")?,
                timestamp: integer(&fields, "timestamp")?,
                origin_service: text(&fields, "originService")?,
                destination_service: text(&fields, "destinationService")?,
                id: text(&fields, "id")?,
            }),
            other => Err(format!(
                "json: cannot unmarshal {} into Go value of type config.UpdateToken",
                json_kind(&other)
            )),
        }
    }
}

/// The value for Go's field `name`: the exact key if present, else one equal to it ignoring
/// ASCII case (Go's rule, leaving out its Unicode folds such as `ſ` for `s`).
fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).or_else(|| {
        fields
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

fn text(fields: &Map<String, Value>, name: &str) -> Result<String, String> {
    match field(fields, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(mismatch(other, name, "string")),
    }
}

fn integer(fields: &Map<String, Value>, name: &str) -> Result<i64, String> {
    match field(fields, name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| format!("json: cannot unmarshal number {n} into Go struct field UpdateToken.{name} of type int")),
        Some(other) => Err(mismatch(other, name, "int")),
    }
}

fn mismatch(value: &Value, name: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field UpdateToken.{name} of type {go_type}",
        json_kind(value)
    )
}

/// The JSON type's name as Go's errors give it.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `common/config/events_test.go:27`.
    const GO_SAMPLE: &str = r#"{"type":"RefreshRemoteApplicationEvent","timestamp":1494514362123,"originService":"config-server:docker:8888","destinationService":"accountservice:**","id":"53e61c71-cbae-4b6d-84bb-d0dcc0aeb4dc"}"#;

    #[test]
    fn the_go_sample_parses_and_writes_back_the_same() {
        let event = BusEvent::parse(GO_SAMPLE.as_bytes()).expect("parses");
        assert_eq!(
            event,
            BusEvent {
                kind: "RefreshRemoteApplicationEvent".into(),
                timestamp: 1_494_514_362_123,
                origin_service: "config-server:docker:8888".into(),
                destination_service: "accountservice:**".into(),
                id: "53e61c71-cbae-4b6d-84bb-d0dcc0aeb4dc".into(),
            }
        );
        assert_eq!(event.to_json(), GO_SAMPLE);
    }

    #[test]
    fn missing_null_unknown_and_differently_cased_fields_are_as_in_go() {
        let event =
            BusEvent::parse(br#"{"DESTINATIONSERVICE":"vipservice:**","id":null,"extra":[1]}"#)
                .expect("parses");
        assert_eq!(event.destination_service, "vipservice:**");
        assert_eq!((event.kind.as_str(), event.timestamp), ("", 0));
        assert_eq!(BusEvent::parse(b"null"), Ok(BusEvent::default()));
    }

    #[test]
    fn values_of_the_wrong_type_fail_the_parse() {
        for body in [
            &br#"{"timestamp":"1494514362123"}"#[..],
            br#"{"timestamp":1.5}"#,
            br#"{"timestamp":1e3}"#,
            br#"{"timestamp":9223372036854775808}"#,
            br#"{"destinationService":["vipservice"]}"#,
            b"[]",
            b"\"vipservice\"",
            b"hello",
            b"",
        ] {
            let parsed = BusEvent::parse(body);
            assert!(
                parsed.is_err(),
                "{:?} parsed as {parsed:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_destination_matches_by_substring() {
        let to = |destination: &str| BusEvent::refresh(destination);
        assert!(to("vipservice:**").is_for("vipservice"));
        assert!(to("vipservice:test:**").is_for("vipservice"));
        assert!(to("xvipservice:**").is_for("vipservice"));
        assert!(!to("**").is_for("vipservice"));
        assert!(!to("accountservice:**").is_for("vipservice"));
    }
}
