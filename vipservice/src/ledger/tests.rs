use super::*;

#[test]
fn an_entry_s_wire_format_is_camel_case_json() {
    let entry = Entry {
        replica: "r-1".into(),
        message_ids: vec!["a".into(), "b".into()],
    };
    let json = serde_json::to_value(&entry).expect("encodes");
    assert_eq!(
        json,
        serde_json::json!({ "replica": "r-1", "messageIds": ["a", "b"] })
    );
    assert_eq!(stream_for("vip_queue").name, "vip_queue.ledger");
}
