//! Two instances on one queue and one database: they share the work, answer `/offers` alike,
//! and a killed one's unacked messages go to the other, yet every notification is exactly one
//! offer: the inbox table's primary key, not a protocol between replicas, decides.

use std::collections::HashSet;

use common::contract::vipservice::OFFERS_MADE;

use crate::helpers::{LIMIT, Setup, Vip};

/// Polls until the instances together made `total` offers.
async fn wait_offers(setup: &Setup, instances: [&Vip; 2], total: u64) {
    let what = format!("{total} offers are made");
    setup
        .broker
        .wait_until(&what, LIMIT, || async {
            let mut made = 0;
            for vip in instances {
                made += vip.metric(OFFERS_MADE).await;
            }
            made == total
        })
        .await;
}

async fn split_and_answer_alike(setup: Setup) {
    let a = setup.spawn(10).await;
    let b = setup.spawn(10).await;
    setup
        .broker
        .wait_until("both consumers are registered", LIMIT, || async {
            setup.broker.consumer_count(&setup.queue).await == 2
        })
        .await;

    setup.publish_many("four", "10000", 4).await;
    wait_offers(&setup, [&a, &b], 4).await;
    assert_eq!((a.got(), b.got()), (2, 2));
    let from_a = a
        .get("/offers/10000")
        .await
        .text()
        .await
        .expect("A answers");
    let from_b = b
        .get("/offers/10000")
        .await
        .text()
        .await
        .expect("B answers");
    assert_eq!(from_a, from_b, "both replicas read the one database");
    assert_eq!(setup.offers("10000").await.len(), 4);

    setup.publish_many("thousand", "10001", 1000).await;
    wait_offers(&setup, [&a, &b], 1004).await;
    let (from_a, from_b) = (a.got() - 2, b.got() - 2);
    println!("1000 messages split {from_a}/{from_b}");
    assert_eq!(from_a + from_b, 1000);
    // Round robin among consumers with room in their prefetch window (10 each): on a loaded
    // machine one may fall behind, but each takes a share.
    assert!(from_a >= 100 && from_b >= 100, "split {from_a}/{from_b}");
    a.terminate().await;
    b.terminate().await;
    setup.cleanup().await;
}

#[tokio::test]
async fn two_instances_on_sqlite_split_the_queue_and_answer_offers_alike() {
    split_and_answer_alike(Setup::new().await).await;
}

#[tokio::test]
async fn two_instances_on_postgres_split_the_queue_and_answer_offers_alike() {
    split_and_answer_alike(Setup::postgres().await).await;
}

async fn killed_instance(setup: Setup) {
    const PREFETCH: u16 = 20;
    const COUNT: usize = 3000;
    let ids = setup.publish_many("kill", "10000", COUNT).await;
    // A starts alone on a full queue, so its prefetch window stays full.
    let a = setup.spawn(PREFETCH).await;
    setup
        .broker
        .wait_until("A is mid-stream", LIMIT, || async { a.got() >= 100 })
        .await;
    // SIGKILL while the queue still has a backlog, i.e. while A holds unacked deliveries.
    let backlog = setup.broker.queue_depth(&setup.queue).await.unwrap_or(0);
    let got_by_a: HashSet<String> = a.kill().await.got.into_iter().collect();
    assert!(backlog > 0, "A drained the queue before the kill");

    let b = setup.spawn(PREFETCH).await;
    setup.wait_drained().await;
    let redelivered = b.log.lock().expect("log lock").redelivered.clone();
    assert!(
        !redelivered.is_empty(),
        "B got none of A's unacked messages"
    );
    b.terminate().await;
    assert_eq!(setup.broker.queue_depth(&setup.queue).await, Some(0));

    let offered: Vec<String> = setup
        .offers("10000")
        .await
        .into_iter()
        .map(|offer| offer.message_id)
        .collect();
    let distinct: HashSet<&String> = offered.iter().collect();
    assert_eq!(
        offered.len(),
        distinct.len(),
        "no message id is offered twice"
    );
    let expected: HashSet<&String> = ids.iter().collect();
    assert_eq!(
        distinct, expected,
        "every notification is exactly one offer"
    );
    let both = redelivered
        .iter()
        .filter(|id| got_by_a.contains(*id))
        .count();
    println!(
        "{}: killed holding {} redelivered messages, {both} of them A had got before",
        setup.database.backend(),
        redelivered.len()
    );
    setup.cleanup().await;
}

#[tokio::test]
async fn on_sqlite_a_killed_instance_s_unacked_messages_are_one_offer_each() {
    killed_instance(Setup::new().await).await;
}

#[tokio::test]
async fn on_postgres_a_killed_instance_s_unacked_messages_are_one_offer_each() {
    killed_instance(Setup::postgres().await).await;
}
