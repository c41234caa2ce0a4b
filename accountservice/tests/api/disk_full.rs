//! The outbox's disk fills up: VIP reads answer 503 with `Retry-After` instead of 200, other
//! reads go on, `/health` names the outbox and the cause, and once there is room again the
//! service recovers by itself, with every notification it accepted published.

use std::time::Duration;

use test_support::{Broker, SmallDisk};

use crate::helpers::*;

#[tokio::test]
#[ignore = "needs root: mounts a tmpfs (scripts/test.sh runs it when root)"]
async fn on_a_full_disk_vip_reads_are_refused_not_lost_and_the_service_recovers_by_itself() {
    let broker = Broker::connect().await;
    let disk = SmallDisk::mount("4m");
    let mut config = TestConfig::new();
    config.outbox_url = Some(disk.sqlite_url("outbox.db"));
    let app = spawn_app_with(config).await;
    declare_vip_queue(&broker, &app.config).await;

    let mut accepted = 0;
    assert_eq!(app.get_account("10000").await.status(), 200);
    accepted += 1;
    disk.fill();
    let refused = loop {
        let response = app.get_account("10000").await;
        match response.status().as_u16() {
            200 => accepted += 1,
            503 => break response,
            other => panic!("a VIP read answered {other}"),
        }
        assert!(accepted < 5_000, "the full disk was never noticed");
    };
    assert_eq!(
        refused.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let body: serde_json::Value = refused.json().await.expect("JSON error");
    assert_eq!(body["status"], 503, "{body}");
    assert_eq!(
        app.get_account("10001").await.status(),
        200,
        "not VIP: served"
    );
    let health = app.get("/health").await;
    assert_eq!(health.status(), 503);
    let health: serde_json::Value = health.json().await.expect("health JSON");
    let outbox = health["outbox"].as_str().unwrap_or_default();
    assert!(
        outbox.contains("full") && outbox.contains("outbox.db"),
        "names the cause and the database: {health}"
    );

    disk.empty();
    broker
        .wait_until("healthy again", Duration::from_secs(10), || async {
            app.get("/health").await.status() == 200
        })
        .await;
    assert_eq!(app.get_account("10000").await.status(), 200);
    accepted += 1;
    let delivered = broker
        .consume(&app.config.queue, accepted, Duration::from_secs(30))
        .await;
    assert_eq!(delivered.len(), accepted, "every accepted read, published");
    assert_eq!(message_ids(&delivered).len(), accepted, "each once");
    let config = app.stop().await;
    assert_eq!(broker.queue_depth(&config.queue).await, Some(0));
}
