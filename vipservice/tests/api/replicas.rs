//! Two instances on one queue: they share the work, and a killed one's unacked messages go
//! to the other, yet every notification is an offer in exactly one of the two stores.
//!
//! A replica killed after its group commit but before its ack reached the broker leaves
//! messages that the other replica processes again; the claim ledger (`<queue>.ledger`)
//! decides which of the two claims counts, once the killed replica is back and has read it.

use std::collections::HashSet;

use vipservice::metrics::OFFERS_MADE;

use crate::helpers::{LIMIT, Setup, Vip, open_store};

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

#[tokio::test]
async fn two_instances_split_4_messages_2_2_and_1000_with_each_at_least_40_percent() {
    let setup = Setup::new().await;
    let a = setup.spawn("a", 10).await;
    let b = setup.spawn("b", 10).await;
    setup
        .broker
        .wait_until("both consumers are registered", LIMIT, || async {
            setup.broker.consumer_count(&setup.queue).await == 2
        })
        .await;

    setup.publish_many("four", "10000", 4).await;
    wait_offers(&setup, [&a, &b], 4).await;
    assert_eq!((a.got(), b.got()), (2, 2));

    setup.publish_many("thousand", "10001", 1000).await;
    wait_offers(&setup, [&a, &b], 1004).await;
    let (from_a, from_b) = (a.got() - 2, b.got() - 2);
    println!("1000 messages split {from_a}/{from_b}");
    assert_eq!(from_a + from_b, 1000);
    assert!(from_a >= 400 && from_b >= 400, "split {from_a}/{from_b}");
    a.terminate().await;
    b.terminate().await;
    setup.cleanup().await;
}

#[tokio::test]
async fn a_killed_instance_s_unacked_messages_are_processed_by_the_other() {
    const PREFETCH: u16 = 20;
    const COUNT: usize = 3000;
    let setup = Setup::new().await;
    let ids = setup.publish_many("kill", "10000", COUNT).await;
    // A starts alone on a full queue, so its prefetch window stays full.
    let a = setup.spawn("a", PREFETCH).await;
    setup
        .broker
        .wait_until("A is mid-stream", LIMIT, || async { a.got() >= 100 })
        .await;
    // SIGKILL while the queue still has a backlog, i.e. while A holds unacked deliveries.
    let backlog = setup.broker.queue_depth(&setup.queue).await.unwrap_or(0);
    let got_by_a: HashSet<String> = a.kill().await.got.into_iter().collect();
    assert!(backlog > 0, "A drained the queue before the kill");

    let b = setup.spawn("b", PREFETCH).await;
    setup.wait_drained().await;
    let redelivered = b.log.lock().expect("log lock").redelivered.clone();
    assert!(
        !redelivered.is_empty(),
        "B got none of A's unacked messages"
    );
    // A comes back on its store, as Swarm restarts a task: it announces the claims it had not
    // announced and reads the ledger, which settles every message both of them claimed.
    let a = setup.spawn("a", PREFETCH).await;
    let what = format!("{COUNT} offers across both stores");
    setup
        .broker
        .wait_until(&what, LIMIT, || async {
            a.offer_count("10000").await + b.offer_count("10000").await == COUNT
        })
        .await;
    // SIGTERM: both finish, commit and ack what they hold; nothing may be left in the queue.
    a.terminate().await;
    b.terminate().await;
    assert_eq!(setup.broker.queue_depth(&setup.queue).await, Some(0));

    let store_a = open_store(&setup.store("a"));
    let store_b = open_store(&setup.store("b"));
    let mut claimed_twice = 0;
    for id in &ids {
        let in_a = store_a.decision(id).expect("A reads").is_some();
        let in_b = store_b.decision(id).expect("B reads").is_some();
        assert!(in_a || in_b, "{id} was never processed");
        assert!(!(in_a && in_b), "{id} is an offer in both stores");
        if redelivered.contains(id) && got_by_a.contains(id) {
            claimed_twice += 1;
        }
    }
    let (counts_a, counts_b) = (store_a.counts().expect("A"), store_b.counts().expect("B"));
    assert_eq!(counts_a.offers + counts_b.offers, COUNT as u64);
    assert_eq!((counts_a.pending, counts_b.pending), (0, 0));
    println!(
        "killed holding {} redelivered messages; {claimed_twice} of them A had got before; \
         duplicates dropped: A {}, B {}",
        redelivered.len(),
        counts_a.duplicates,
        counts_b.duplicates,
    );
    setup.cleanup().await;
}
