//! A VIP read reaches the VIP queue; other reads do not.

use test_support::Broker;

use crate::helpers::*;

#[tokio::test]
async fn a_vip_read_reaches_the_vip_queue_with_body_and_properties() {
    let broker = Broker::connect().await;
    let app = spawn_app().await;

    let response = app.get_account("10001").await;
    assert_eq!(response.status(), 200);
    let response = app.get_account("10000").await;
    assert_eq!(response.status(), 200);
    let account: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(account["name"], "Person_0");
    assert!(account["servedBy"].is_string(), "{account}");
    assert_eq!(
        account["quote"],
        serde_json::json!({"quote": "", "ipAddress": "", "language": ""}),
        "no quotes service: the Go original's empty quote"
    );
    assert_eq!(app.get_account("10100").await.status(), 404);
    assert_eq!(app.get_account("bad.id").await.status(), 400);

    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for name in [
        "vip_notifications_published_total",
        "vip_notifications_failed_total",
        "vip_notifications_buffered_total",
        "vip_outbox_depth",
        "http_requests_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }

    // After a clean stop no publish is under way: the queue holds every announcement made.
    let config = app.stop().await;
    let delivered = broker.drain(&config.queue).await;
    assert_eq!(delivered.len(), 1, "only the VIP read is announced");
    let message = &delivered[0];
    let json = body(message);
    assert_eq!(json["accountId"], "10000");
    assert!(
        json["readAt"]
            .as_str()
            .and_then(common::notification::parse_read_at)
            .is_some(),
        "{json}"
    );
    let properties = &message.properties;
    assert_eq!(properties.kind.as_deref(), Some("VipNotification"));
    assert_eq!(properties.app_id.as_deref(), Some("accountservice"));
    assert_eq!(properties.content_type.as_deref(), Some("application/json"));
    assert_eq!(properties.delivery_mode, Some(2), "persistent");
    assert!(properties.message_id.is_some());
}
