//! The offers database going away under load (connections cut and refused by a proxy, as in a
//! restart): the consumer holds what it has, the broker stops delivering, `/health` names the
//! database, and once it is back everything is an offer and nothing is dead-lettered.

use common::contract::vipservice::OFFERS_MADE;
use test_support::TcpProxy;

use crate::helpers::{LIMIT, Setup};

#[tokio::test]
async fn a_database_outage_mid_stream_loses_nothing_and_dead_letters_nothing() {
    const BEFORE: usize = 100;
    const DURING: usize = 500;
    const PREFETCH: u16 = 50;
    let mut setup = Setup::postgres().await;
    let server = setup
        .database
        .server_address()
        .expect("a PostgreSQL server");
    let proxy = TcpProxy::start(server).await;
    setup.use_database_url(
        setup
            .database
            .url_via(proxy.address())
            .expect("a proxied URL"),
    );
    let vip = setup.spawn(PREFETCH).await;
    setup.publish_many("before", "10000", BEFORE).await;
    vip.wait_metric(OFFERS_MADE, BEFORE as u64).await;

    proxy.refuse(true);
    proxy.cut();
    setup.publish_many("during", "10000", DURING).await;
    vip.wait_healthy(false).await;
    let (_, health) = vip.health().await;
    assert_eq!(health["database"]["up"], false, "{health}");
    let url = health["database"]["url"].as_str().unwrap_or_default();
    assert!(
        url.contains(&proxy.address().port().to_string()),
        "{health}"
    );
    assert!(health["database"]["error"].is_string(), "{health}");
    // It holds one prefetch window of deliveries and takes no more.
    let held = DURING - usize::from(PREFETCH);
    setup
        .broker
        .wait_until("the consumer holds its prefetch window", LIMIT, || async {
            setup.broker.queue_depth(&setup.queue).await == Some(held as u32)
        })
        .await;
    assert_eq!(vip.metric(OFFERS_MADE).await, BEFORE as u64);

    proxy.refuse(false);
    setup.wait_recovered(&vip, BEFORE + DURING).await;
    vip.terminate().await;
    assert_eq!(setup.offers("10000").await.len(), BEFORE + DURING);
    setup.cleanup().await;
}
