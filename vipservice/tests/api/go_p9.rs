//! A mixed fleet with the Go original (its P9 services, played by test-support's stand-ins,
//! which speak AMQP exactly as they do): with `amqp.compat: go-p9` our vipservice shares
//! `vip_queue` with them whichever side declared it first, makes one offer per notification,
//! and dead-letters poison itself; without it, it refuses the Go queue at once and says why.

use common::contract::vipservice::OFFERS_MADE;
use test_support::{GoAccountService, GoVipService, amqp_url};

use crate::helpers::{LIMIT, Setup};

const PREFETCH: u16 = 20;

async fn go_p9_setup() -> Setup {
    let mut setup = Setup::new().await;
    setup.use_env("GOBLOG_AMQP__COMPAT", "go-p9");
    setup
}

/// Publishes `count` notifications for account 10000 as Go's accountservice does.
async fn go_notifies(go: &GoAccountService, setup: &Setup, count: usize) {
    for _ in 0..count {
        go.notify_vip(&setup.queue, "10000")
            .await
            .expect("Go's publish is taken");
    }
}

#[tokio::test]
async fn with_go_s_accountservice_first_every_notification_is_one_offer() {
    let setup = go_p9_setup().await;
    let go = GoAccountService::connect(&amqp_url())
        .await
        .expect("Go connects");
    go_notifies(&go, &setup, 10).await;
    let vip = setup.spawn(PREFETCH).await;
    go_notifies(&go, &setup, 10).await;
    vip.wait_metric(OFFERS_MADE, 20).await;
    setup.wait_drained().await;
    vip.terminate().await;
    assert_eq!(setup.offers("10000").await.len(), 20, "one offer each");
    go.close().await.expect("Go closes");
    setup.cleanup().await;
}

#[tokio::test]
async fn with_ours_first_go_s_accountservice_publishes_into_the_same_queue() {
    let setup = go_p9_setup().await;
    let vip = setup.spawn(PREFETCH).await;
    let go = GoAccountService::connect(&amqp_url())
        .await
        .expect("Go connects");
    go_notifies(&go, &setup, 20).await;
    vip.wait_metric(OFFERS_MADE, 20).await;
    vip.terminate().await;
    assert_eq!(setup.offers("10000").await.len(), 20);
    go.close().await.expect("Go closes");
    setup.cleanup().await;
}

#[tokio::test]
async fn a_go_replica_and_ours_share_the_queue_and_nothing_is_handled_twice() {
    const COUNT: usize = 40;
    let setup = go_p9_setup().await;
    let go_vip = GoVipService::start(&amqp_url(), &setup.queue)
        .await
        .expect("Go's vipservice consumes");
    let vip = setup.spawn(PREFETCH).await;
    let go = GoAccountService::connect(&amqp_url())
        .await
        .expect("Go connects");
    go_notifies(&go, &setup, COUNT).await;
    setup.wait_drained().await;
    let deadline = tokio::time::Instant::now() + LIMIT;
    let (by_go, by_ours) = loop {
        let (by_go, by_ours) = (
            go_vip.received().len(),
            usize::try_from(vip.metric(OFFERS_MADE).await).unwrap_or(usize::MAX),
        );
        if by_go + by_ours >= COUNT || tokio::time::Instant::now() > deadline {
            break (by_go, by_ours);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(by_go + by_ours, COUNT, "each notification handled once");
    assert!(
        by_go > 0 && by_ours > 0,
        "round-robin: Go {by_go}, ours {by_ours}"
    );
    vip.terminate().await;
    assert_eq!(setup.offers("10000").await.len(), by_ours);
    go_vip.close().await.expect("Go's vipservice closes");
    go.close().await.expect("Go closes");
    setup.cleanup().await;
}

#[tokio::test]
async fn poison_on_a_go_queue_is_dead_lettered_by_the_consumer_and_consumption_goes_on() {
    let setup = go_p9_setup().await;
    let vip = setup.spawn(PREFETCH).await;
    let go = GoAccountService::connect(&amqp_url())
        .await
        .expect("Go connects");
    go.publish_on_queue(&setup.queue, b"not a notification")
        .await
        .expect("published");
    go_notifies(&go, &setup, 5).await;
    vip.wait_metric(OFFERS_MADE, 5).await;
    let dlq = format!("{}.dlq", setup.queue);
    setup
        .broker
        .wait_until("the poison is in our dead-letter queue", LIMIT, || async {
            setup.broker.queue_depth(&dlq).await == Some(1)
        })
        .await;
    setup.wait_drained().await;
    let dead = setup.broker.drain(&dlq).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, b"not a notification");
    vip.terminate().await;
    go.close().await.expect("Go closes");
    setup.cleanup().await;
}

#[tokio::test]
async fn outside_the_mode_a_go_declared_queue_is_refused_at_once_naming_the_setting() {
    let setup = Setup::new().await;
    let go = GoAccountService::connect(&amqp_url())
        .await
        .expect("Go connects");
    go_notifies(&go, &setup, 1).await;
    let (status, log) = setup.spawn_failing().await;
    assert!(!status.success(), "it must not start: {log}");
    for expected in [setup.queue.as_str(), "durable", "amqp.compat: go-p9"] {
        assert!(log.contains(expected), "names {expected:?}: {log}");
    }
    assert_eq!(
        setup.broker.queue_depth(&setup.queue).await,
        Some(1),
        "Go's notification is left alone"
    );
    go.close().await.expect("Go closes");
    setup.cleanup().await;
}
