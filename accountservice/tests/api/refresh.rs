//! VIP account ids follow a refresh through the config bus, without a restart.

use std::time::Duration;

use test_support::Broker;

use crate::helpers::*;

#[tokio::test]
async fn refreshing_vip_account_ids_through_the_bus_makes_a_new_id_vip() {
    let broker = Broker::connect().await;
    let mut app = spawn_app().await;
    assert_eq!(app.get_account("10042").await.status(), 200);

    app.refresh_vip_account_ids(&["10000", "10042"]).await;
    assert_eq!(app.get_account("10042").await.status(), 200);

    let config = app.stop().await;
    let delivered = broker
        .consume(&config.queue, 2, Duration::from_secs(1))
        .await;
    assert_eq!(
        delivered.len(),
        1,
        "only the read after the refresh is announced"
    );
    assert_eq!(body(&delivered[0])["accountId"], "10042");

    clean_up(&broker, &config).await;
}
