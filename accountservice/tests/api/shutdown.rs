//! Notifications still being published at shutdown are persisted, and published after a
//! restart on the same store.

use std::time::Duration;

use test_support::{Broker, amqp_url};

use crate::helpers::*;

const READS: usize = 10;

#[tokio::test]
async fn notifications_in_flight_at_shutdown_survive_a_restart() {
    let broker = Broker::connect().await;
    let (mut config, proxy) = TestConfig::through_proxy().await;
    // Publishes wait for the broker longer than shutdown waits for them.
    config.outage_wait_ms = 3_000;
    config.publish_timeout_ms = 3_000;
    config.shutdown_grace_ms = 100;
    let app = spawn_app_with(config).await;
    declare_vip_queue(&broker, &app.config).await;

    cut_broker(&broker, &proxy, &app).await;
    for _ in 0..READS {
        assert_eq!(app.get_account("10000").await.status(), 200);
    }
    let mut config = app.stop().await;
    assert_eq!(
        broker.queue_depth(&config.queue).await,
        Some(0),
        "nothing got through"
    );

    config.amqp_url = amqp_url();
    let app = spawn_app_with(config).await;
    let delivered = broker
        .consume(&app.config.queue, READS, Duration::from_secs(30))
        .await;
    assert_eq!(delivered.len(), READS, "none lost");
    assert_eq!(message_ids(&delivered).len(), READS, "each once");
    assert!(delivered.iter().all(|d| body(d)["accountId"] == "10000"));

    let config = app.stop().await;
    assert_eq!(
        broker.queue_depth(&config.queue).await,
        Some(0),
        "a notification arrived twice"
    );
}
