//! Spring Cloud Bus events as captured from the bus exchange.

use std::collections::BTreeSet;

use common::config::{BusEvent, BusId, RefreshEvent};
use serde_json::{Value, json};

use crate::helpers::fixture;

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .map(|map| map.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn parses_every_captured_event_by_type() {
    let refresh = BusEvent::parse(&fixture("refresh-accountservice.json")).expect("parses");
    let BusEvent::Refresh(header) = refresh else {
        panic!("a refresh: {refresh:?}");
    };
    assert_eq!(header.id, "53e61c71-cbae-4b6d-84bb-d0dcc0aeb4dc");
    assert_eq!(
        header.destination_service.as_deref(),
        Some("accountservice:**")
    );
    assert_eq!(
        header.origin_service.as_deref(),
        Some("config-server:docker:8888")
    );

    let change = BusEvent::parse(&fixture("env-change.json")).expect("parses");
    let BusEvent::EnvironmentChange { values, .. } = change else {
        panic!("an environment change: {change:?}");
    };
    assert_eq!(
        values.get("server_name"),
        Some(&json!("Accountservice CHANGED"))
    );
    assert_eq!(values.len(), 1);

    let ack = BusEvent::parse(&fixture("ack.json")).expect("parses");
    assert!(matches!(ack, BusEvent::Ack(_)), "{ack:?}");

    let unknown = BusEvent::parse(br#"{"type":"UnknownRemoteApplicationEvent","id":"x"}"#);
    assert!(
        matches!(unknown, Ok(BusEvent::Unknown { .. })),
        "{unknown:?}"
    );

    assert!(BusEvent::parse(&fixture("garbage.txt")).is_err());
}

#[test]
fn reacts_only_to_events_addressed_to_it() {
    let account_test = BusId::with_unique("accountservice", "test", 6767, "a1");
    let account_dev = BusId::with_unique("accountservice", "dev", 6767, "a2");
    let vip = BusId::with_unique("vipservice", "test", 6868, "v1");
    let table = [
        ("refresh-all.json", [true, true, true]),
        ("refresh-accountservice.json", [true, true, false]),
        ("refresh-lookalike.json", [false, false, false]),
        ("refresh-vipservice.json", [false, false, true]),
        ("refresh-profile.json", [true, false, false]),
        ("env-change.json", [true, true, false]),
    ];
    for (name, expected) in table {
        let event = BusEvent::parse(&fixture(name)).expect("parses");
        let header = event.header().expect("has a header");
        let actual = [&account_test, &account_dev, &vip].map(|id| header.is_for(id));
        assert_eq!(actual, expected, "{name}");
    }
}

#[test]
fn acks_in_the_shape_spring_cloud_bus_sends() {
    let handled = BusEvent::parse(&fixture("refresh-all.json")).expect("parses");
    let bus_id = BusId::with_unique("vipservice", "test", 6868, "v1");
    let ack = handled.ack(&bus_id).expect("a refresh is acknowledged");
    let ours = serde_json::to_value(&ack).expect("serializes");
    let captured: Value = serde_json::from_slice(&fixture("ack.json")).expect("fixture");

    assert_eq!(keys(&ours), keys(&captured));
    for field in [
        "type",
        "destinationService",
        "ackId",
        "ackDestinationService",
        "event",
    ] {
        assert_eq!(ours[field], captured[field], "{field}");
    }
    assert_eq!(ours["originService"], "vipservice:test:6868:v1");
    assert!(ours["timestamp"].is_i64());
    assert_ne!(ours["id"], ours["ackId"]);
}

#[test]
fn builds_a_refresh_in_the_shape_a_config_server_sends() {
    let refresh = RefreshEvent::new("goblog-cli:local:0:c1", Some("accountservice"));
    let ours = serde_json::to_value(&refresh).expect("serializes");
    let captured: Value =
        serde_json::from_slice(&fixture("refresh-accountservice.json")).expect("fixture");

    assert_eq!(keys(&ours), keys(&captured));
    assert_eq!(ours["type"], captured["type"]);
    assert_eq!(ours["destinationService"], captured["destinationService"]);

    let for_all = RefreshEvent::new("goblog-cli:local:0:c1", None);
    assert_eq!(for_all.destination_service, "**");
    let bytes = serde_json::to_vec(&refresh).expect("serializes");
    assert!(matches!(BusEvent::parse(&bytes), Ok(BusEvent::Refresh(_))));
}
