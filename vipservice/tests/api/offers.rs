//! One instance: notifications become offers, once; poison is dead-lettered; `/health`
//! follows the consumer.

use common::contract::vipservice::{
    DEAD_LETTERED, DUPLICATES_DROPPED, HANDLER_LATENCY, NOTIFICATION_LAG, OFFERS_MADE,
};
use serde_json::Value;
use tokio::time::Instant;

use crate::helpers::{LIMIT, Setup, fixture};

#[tokio::test]
async fn notifications_in_both_time_formats_become_offers_and_a_duplicate_gives_one() {
    let setup = Setup::new().await;
    let vip = setup.spawn(10).await;
    assert_eq!(vip.get("/offers/10000").await.status(), 404);
    assert_eq!(vip.get("/offers/not%20an%20id").await.status(), 400);

    // One at a time: handlers run concurrently, and the test checks the offers' order.
    let queue = &setup.queue;
    setup
        .broker
        .publish_raw(queue, &fixture("go-original.json"), "go-1")
        .await;
    vip.wait_metric(OFFERS_MADE, 1).await;
    setup
        .broker
        .publish_raw(queue, &fixture("rfc3339.json"), "rfc-1")
        .await;
    vip.wait_metric(OFFERS_MADE, 2).await;
    setup
        .broker
        .publish_raw(queue, &fixture("go-original.json"), "go-1")
        .await;
    vip.wait_metric(DUPLICATES_DROPPED, 1).await;

    assert_eq!(vip.metric(OFFERS_MADE).await, 2);
    let offers: Vec<Value> = vip.get("/offers/10000").await.json().await.expect("JSON");
    let ids: Vec<&str> = offers
        .iter()
        .filter_map(|o| o["messageId"].as_str())
        .collect();
    // Newest first, by the time of the offer; `readAt` kept to the microsecond.
    assert_eq!(ids, ["rfc-1", "go-1"], "{offers:?}");
    assert_eq!(offers[1]["readAt"], "2017-02-15T20:06:27.033757Z");
    assert_eq!(vip.metric(&format!("{HANDLER_LATENCY}_count")).await, 3);
    // Lag is counted from the reads (in 2017): every one over the last bucket.
    assert_eq!(vip.metric(&format!("{NOTIFICATION_LAG}_count")).await, 3);
    let within_a_minute = format!("{NOTIFICATION_LAG}_bucket{{le=\"60\"}}");
    assert!(
        vip.get("/metrics")
            .await
            .text()
            .await
            .expect("metrics")
            .contains(&format!("{within_a_minute} 0")),
        "{within_a_minute} is not 0"
    );
    vip.terminate().await;
    setup.cleanup().await;
}

#[tokio::test]
async fn poison_bodies_are_dead_lettered_and_consumption_goes_on() {
    let setup = Setup::new().await;
    let vip = setup.spawn(10).await;
    let poisons = [
        "poison-bad-time.json",
        "poison-no-account.json",
        "poison-truncated.json",
    ];
    for (i, name) in poisons.iter().enumerate() {
        setup
            .broker
            .publish_raw(&setup.queue, &fixture(name), &format!("poison-{i}"))
            .await;
    }
    setup
        .broker
        .publish_raw(&setup.queue, &fixture("rfc3339.json"), "good-1")
        .await;

    vip.wait_metric(OFFERS_MADE, 1).await;
    vip.wait_metric(DEAD_LETTERED, 3).await;
    let dlq = format!("{}.dlq", setup.queue);
    setup
        .broker
        .wait_until("the poison is in the DLQ", LIMIT, || async {
            setup.broker.queue_depth(&dlq).await == Some(3)
        })
        .await;
    let dead = setup.broker.drain(&dlq).await;
    let mut bodies: Vec<Vec<u8>> = dead.into_iter().map(|m| m.body).collect();
    let mut expected: Vec<Vec<u8>> = poisons.iter().map(|name| fixture(name)).collect();
    bodies.sort();
    expected.sort();
    assert_eq!(bodies, expected);
    vip.terminate().await;
    setup.cleanup().await;
}

#[tokio::test]
async fn health_is_503_while_the_consumer_is_cancelled_and_200_once_it_resubscribed() {
    let setup = Setup::new().await;
    let vip = setup.spawn(10).await;
    let (status, body) = vip.health().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["consumer"]["queue"], setup.queue.as_str());

    // The broker cancels the consumer of a deleted queue; the client declares it again.
    setup.broker.delete(&[&setup.queue], &[]).await;
    vip.wait_healthy(false).await;
    vip.wait_healthy(true).await;
    setup
        .broker
        .publish_raw(&setup.queue, &fixture("rfc3339.json"), "after")
        .await;
    vip.wait_metric(OFFERS_MADE, 1).await;
    vip.terminate().await;
    setup.cleanup().await;
}

#[tokio::test]
async fn a_refreshed_offer_rule_applies_to_later_notifications() {
    let setup = Setup::new().await;
    let vip = setup.spawn(10).await;
    setup.refresh("offer:\n  text: A refreshed offer\n").await;
    // The refresh lands asynchronously: notify until an offer carries the new text.
    let deadline = Instant::now() + LIMIT;
    for i in 1.. {
        setup.publish_many(&format!("n{i}"), "10000", 1).await;
        vip.wait_metric(OFFERS_MADE, i).await;
        let offers: Vec<Value> = vip.get("/offers/10000").await.json().await.expect("JSON");
        if offers[0]["text"] == "A refreshed offer" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new rule never applied: {offers:?}"
        );
    }
    vip.terminate().await;
    setup.cleanup().await;
}
