//! Spring Cloud Bus events: parsing what arrives on the bus exchange, deciding whether it is
//! addressed to this instance exactly as Spring Cloud Bus does, and building the events a
//! service sends (the ack after a refresh, a refresh for a destination).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ConfigError;
use super::ant_path;
use super::properties::{Properties, PropertySource, flatten};

/// Java package of the bus event classes, which acks name.
const EVENT_PACKAGE: &str = "org.springframework.cloud.bus.event";
const REFRESH: &str = "RefreshRemoteApplicationEvent";
const ENVIRONMENT_CHANGE: &str = "EnvironmentChangeRemoteApplicationEvent";
const ACK: &str = "AckRemoteApplicationEvent";

/// This instance's address on the bus: `{app}:{profile}:{port}:{unique}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusId(String);

impl BusId {
    /// A new instance's id, unique by a random part as Spring's `${random.value}`.
    pub fn new(application: &str, profile: &str, port: u16) -> Self {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        Self::with_unique(application, profile, port, &unique)
    }

    /// The id with a given unique part.
    pub fn with_unique(application: &str, profile: &str, port: u16, unique: &str) -> Self {
        Self(format!("{application}:{profile}:{port}:{unique}"))
    }

    /// The id as sent in `originService`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BusId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The fields every bus event has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventHeader {
    /// The event's id, which an ack quotes.
    #[serde(default)]
    pub id: String,
    /// The bus id of the sender.
    pub origin_service: Option<String>,
    /// Who the event is for: an Ant-style pattern over bus ids; none means everyone.
    pub destination_service: Option<String>,
    /// When it was sent, in milliseconds since the epoch.
    pub timestamp: Option<i64>,
}

impl EventHeader {
    /// Whether the event is addressed to the instance `bus_id`.
    pub fn is_for(&self, bus_id: &BusId) -> bool {
        destination_matches(self.destination_service.as_deref(), bus_id.as_str())
    }
}

/// A message from the bus exchange.
#[derive(Debug, Clone, PartialEq)]
pub enum BusEvent {
    /// Reload settings from the config source.
    Refresh(EventHeader),
    /// Set these flattened keys.
    EnvironmentChange {
        /// The event's header.
        header: EventHeader,
        /// The keys to set.
        values: Properties,
    },
    /// Some instance handled an event; nothing to do.
    Ack(EventHeader),
    /// An event type this service does not handle; nothing to do.
    Unknown {
        /// The event's `type`.
        kind: String,
    },
}

impl BusEvent {
    /// Parses a bus message by its `type`. What is not a JSON object with a string `type` is
    /// an error, to log and drop.
    pub fn parse(body: &[u8]) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::BadBusEvent { reason };
        let message: Value =
            serde_json::from_slice(body).map_err(|error| bad(error.to_string()))?;
        let kind = message
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no string field `type`".to_owned()))?
            .to_owned();
        let header =
            || EventHeader::deserialize(&message).map_err(|error| bad(format!("{kind}: {error}")));
        Ok(match kind.as_str() {
            REFRESH => Self::Refresh(header()?),
            ACK => Self::Ack(header()?),
            ENVIRONMENT_CHANGE => {
                let header = header()?;
                let values = match message.get("values") {
                    Some(values @ Value::Object(_)) => flatten(values),
                    Some(Value::Null) | None => Default::default(),
                    Some(_) => return Err(bad(format!("{kind}: `values` is not an object"))),
                };
                let values = Properties::from_sources(vec![PropertySource {
                    name: format!("bus event {}", header.id),
                    properties: values,
                }])?;
                Self::EnvironmentChange { header, values }
            }
            _ => Self::Unknown { kind },
        })
    }

    /// The header, for events that have one worth reading.
    pub fn header(&self) -> Option<&EventHeader> {
        match self {
            Self::Refresh(header) | Self::Ack(header) => Some(header),
            Self::EnvironmentChange { header, .. } => Some(header),
            Self::Unknown { .. } => None,
        }
    }

    /// The ack that `bus_id` publishes after handling this event; `None` for events that are
    /// not acknowledged (acks, unknown types).
    pub fn ack(&self, bus_id: &BusId) -> Option<AckEvent> {
        let (header, kind) = match self {
            Self::Refresh(header) => (header, REFRESH),
            Self::EnvironmentChange { header, .. } => (header, ENVIRONMENT_CHANGE),
            Self::Ack(_) | Self::Unknown { .. } => return None,
        };
        Some(AckEvent {
            timestamp: now_millis(),
            origin_service: bus_id.to_string(),
            destination_service: "**".to_owned(),
            id: new_event_id(),
            ack_id: header.id.clone(),
            ack_destination_service: header
                .destination_service
                .clone()
                .unwrap_or_else(|| "**".to_owned()),
            event: format!("{EVENT_PACKAGE}.{kind}"),
        })
    }
}

/// An `AckRemoteApplicationEvent`, serialized as Spring Cloud Bus does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename = "AckRemoteApplicationEvent",
    rename_all = "camelCase"
)]
pub struct AckEvent {
    /// When it was sent, in milliseconds since the epoch.
    pub timestamp: i64,
    /// The acknowledging instance's bus id.
    pub origin_service: String,
    /// Who the ack is for: everyone.
    pub destination_service: String,
    /// This ack's own id.
    pub id: String,
    /// The id of the acknowledged event.
    pub ack_id: String,
    /// The destination of the acknowledged event.
    pub ack_destination_service: String,
    /// The Java class name of the acknowledged event.
    pub event: String,
}

/// A `RefreshRemoteApplicationEvent`, as a config server's `/actuator/busrefresh/{destination}`
/// publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "type",
    rename = "RefreshRemoteApplicationEvent",
    rename_all = "camelCase"
)]
pub struct RefreshEvent {
    /// When it was sent, in milliseconds since the epoch.
    pub timestamp: i64,
    /// The sender's bus id.
    pub origin_service: String,
    /// Who should refresh, normalized as Spring does (`accountservice` → `accountservice:**`).
    pub destination_service: String,
    /// The event's id.
    pub id: String,
}

impl RefreshEvent {
    /// A refresh from `origin` for `destination` (everyone when `None`).
    pub fn new(origin: &str, destination: Option<&str>) -> Self {
        Self {
            timestamp: now_millis(),
            origin_service: origin.to_owned(),
            destination_service: normalize_destination(destination.unwrap_or("**")),
            id: new_event_id(),
        }
    }
}

/// Whether an event for `destination` is for the instance `bus_id`, as Spring Cloud Bus decides:
/// no destination means everyone; otherwise the normalized destination is matched Ant-style
/// (`:` separating segments), and when the bus id's profile part lists several profiles, each
/// one is tried alone.
pub fn destination_matches(destination: Option<&str>, bus_id: &str) -> bool {
    let Some(destination) = destination.filter(|d| !d.trim().is_empty()) else {
        return true;
    };
    let pattern = normalize_destination(destination);
    if ant_path::matches(&pattern, bus_id) {
        return true;
    }
    let segments: Vec<&str> = bus_id.split(':').filter(|s| !s.is_empty()).collect();
    let Some(profiles) = segments.get(1) else {
        return false;
    };
    let profiles: Vec<&str> = profiles
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    profiles.len() > 1
        && profiles.iter().any(|profile| {
            let mut single = segments.clone();
            single[1] = profile;
            ant_path::matches(&pattern, &single.join(":"))
        })
}

/// Spring's `PathDestination`: a destination naming at most an application and a profile
/// (at most one `:`) means all its instances, so `:**` is appended.
fn normalize_destination(destination: &str) -> String {
    let all_instances = destination == "**"
        || destination.matches(':').count() > 1
        || destination.to_ascii_lowercase().ends_with(":**");
    if all_instances {
        destination.to_owned()
    } else {
        format!("{destination}:**")
    }
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn new_event_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn matches_destinations_as_spring_cloud_bus_does() {
        let account = "accountservice:test:6767:5f3a";
        let table = [
            (None, account, true),
            (Some(""), account, true),
            (Some("  "), account, true),
            (Some("**"), account, true),
            (Some("accountservice:**"), account, true),
            (Some("accountservice"), account, true),
            (Some("accountservice:test"), account, true),
            (Some("accountservice:test:**"), account, true),
            (Some("accountservice:test:6767:5f3a"), account, true),
            (Some("accountservice:test:6767"), account, false),
            (Some("accountservice:test:6767:*"), account, true),
            (Some("accountservice:dev:**"), account, false),
            (Some("accountservice:dev"), account, false),
            (Some("xaccountservice:**"), account, false),
            (Some("accountservicex:**"), account, false),
            (Some("vipservice:**"), account, false),
            (Some("vipservice"), account, false),
            (Some("*service:**"), account, true),
            (
                Some("accountservice:dev:**"),
                "accountservice:test,dev:6767:5f3a",
                true,
            ),
            (
                Some("accountservice:prod:**"),
                "accountservice:test,dev:6767:5f3a",
                false,
            ),
            (
                Some("accountservice:test,dev:**"),
                "accountservice:test,dev:6767:5f3a",
                true,
            ),
        ];
        for (destination, bus_id, expected) in table {
            assert_eq!(
                destination_matches(destination, bus_id),
                expected,
                "{destination:?} vs {bus_id}"
            );
        }
    }

    #[test]
    fn normalizes_destinations_like_path_destination() {
        for (given, normalized) in [
            ("**", "**"),
            ("accountservice", "accountservice:**"),
            ("accountservice:test", "accountservice:test:**"),
            ("accountservice:**", "accountservice:**"),
            ("accountservice:test:6767", "accountservice:test:6767"),
        ] {
            assert_eq!(normalize_destination(given), normalized);
        }
    }

    #[test]
    fn acks_what_it_handled_and_nothing_else() {
        let bus_id = BusId::with_unique("vipservice", "test", 6868, "u1");
        let refresh = BusEvent::Refresh(EventHeader {
            id: "e1".into(),
            destination_service: Some("vipservice:**".into()),
            ..EventHeader::default()
        });
        let ack = refresh.ack(&bus_id).expect("refresh is acked");
        assert_eq!(ack.origin_service, "vipservice:test:6868:u1");
        assert_eq!(ack.ack_id, "e1");
        assert_eq!(ack.ack_destination_service, "vipservice:**");
        assert_eq!(
            ack.event,
            "org.springframework.cloud.bus.event.RefreshRemoteApplicationEvent"
        );
        assert_eq!(BusEvent::Ack(EventHeader::default()).ack(&bus_id), None);
        let unknown = BusEvent::Unknown { kind: "X".into() };
        assert_eq!(unknown.ack(&bus_id), None);
    }

    #[test]
    fn rejects_messages_without_a_type() {
        for body in [&b"[]"[..], b"{}", br#"{"type": 3}"#, b""] {
            assert!(BusEvent::parse(body).is_err(), "{body:?}");
        }
        let values = BusEvent::parse(
            &serde_json::to_vec(&json!({"type": ENVIRONMENT_CHANGE, "values": 3})).expect("json"),
        );
        assert!(values.is_err());
    }
}
