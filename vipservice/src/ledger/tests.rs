use chrono::{TimeZone, Utc};

use super::*;

#[test]
fn an_entry_s_wire_format_is_camel_case_json() {
    let read_at = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    let entry = Entry {
        replica: "r-1".into(),
        claims: vec![Claim {
            message_id: "a".into(),
            account_id: "10000".into(),
            read_at,
        }],
    };
    let json = serde_json::to_value(&entry).expect("encodes");
    assert_eq!(
        json,
        serde_json::json!({
            "replica": "r-1",
            "claims": [{ "messageId": "a", "accountId": "10000", "readAt": "2026-11-25T10:00:00Z" }]
        })
    );
    assert_eq!(
        serde_json::from_value::<Entry>(json).expect("decodes"),
        entry
    );
    assert_eq!(stream_for("vip_queue").name, "vip_queue.ledger");
}
