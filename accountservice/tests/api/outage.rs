//! With the broker cut off, VIP reads stay fast and their notifications wait in the outbox
//! until the connection is back.

use std::time::{Duration, Instant};

use test_support::Broker;

use crate::helpers::*;

const READS: usize = 20;
/// A read that waited for the broker would take the 3 s outage wait; one that did not takes
/// milliseconds, or a few hundred on a loaded machine.
const FAST: Duration = Duration::from_secs(1);

#[tokio::test]
async fn with_the_broker_cut_vip_reads_stay_fast_and_every_notification_arrives_once_it_is_back() {
    let broker = Broker::connect().await;
    let (mut config, proxy) = TestConfig::through_proxy().await;
    config.outage_wait_ms = 3_000;
    let app = spawn_app_with(config).await;
    declare_vip_queue(&broker, &app.config).await;

    cut_broker(&broker, &proxy, &app).await;
    for _ in 0..READS {
        let started = Instant::now();
        assert_eq!(app.get_account("10000").await.status(), 200);
        assert!(
            started.elapsed() < FAST,
            "a read waited {:?} for the broker",
            started.elapsed()
        );
    }
    broker
        .wait_until(
            "every notification is in the outbox",
            Duration::from_secs(15),
            || async { app.health().await["outboxDepth"] == READS },
        )
        .await;
    let health = app.health().await;
    assert_eq!(
        health["status"], "UP",
        "a broker outage alone is not fatal: {health}"
    );
    assert_ne!(health["broker"], "connected", "{health}");

    proxy.refuse(false);
    let delivered = broker
        .consume(&app.config.queue, READS, Duration::from_secs(30))
        .await;
    assert_eq!(delivered.len(), READS);
    assert_eq!(
        message_ids(&delivered).len(),
        READS,
        "each notification once"
    );
    broker
        .wait_until("the outbox is empty", Duration::from_secs(10), || async {
            app.health().await["outboxDepth"] == 0
        })
        .await;

    let config = app.stop().await;
    assert_eq!(
        broker.queue_depth(&config.queue).await,
        Some(0),
        "a notification arrived twice"
    );
}

#[tokio::test]
async fn a_partition_from_the_broker_shows_on_health_within_seconds_and_reads_stay_200() {
    let broker = Broker::connect().await;
    let (config, proxy) = TestConfig::through_proxy().await;
    let app = spawn_app_with(config).await;
    declare_vip_queue(&broker, &app.config).await;

    proxy.blackhole(true);
    let partitioned = Instant::now();
    assert_eq!(app.get_account("10000").await.status(), 200);
    broker
        .wait_until(
            "the service sees the broker gone",
            Duration::from_secs(8),
            || async { app.health().await["broker"] != "connected" },
        )
        .await;
    eprintln!("partition noticed after {:?}", partitioned.elapsed());
    assert_eq!(app.get_account("10000").await.status(), 200);

    proxy.blackhole(false);
    let delivered = broker
        .consume(&app.config.queue, 2, Duration::from_secs(30))
        .await;
    assert_eq!(
        message_ids(&delivered).len(),
        2,
        "both reads, once the partition is over"
    );
    app.stop().await;
}
