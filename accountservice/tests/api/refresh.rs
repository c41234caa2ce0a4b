//! VIP account ids follow a refresh through the config bus, without a restart.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::Broker;
use tokio::time::Instant;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn refreshing_vip_account_ids_through_the_bus_makes_a_new_id_vip() {
    let broker = Broker::connect().await;
    let mut app = spawn_app().await;
    assert_eq!(app.get_account("10042").await.status(), 200);

    app.refresh_vip_account_ids(&["10000", "10042"]).await;
    assert_eq!(app.get_account("10042").await.status(), 200);

    // After a clean stop no publish is under way: the queue holds every announcement made.
    let config = app.stop().await;
    let delivered = broker.drain(&config.queue).await;
    assert_eq!(
        delivered.len(),
        1,
        "only the read after the refresh is announced"
    );
    assert_eq!(body(&delivered[0])["accountId"], "10042");
}

#[tokio::test]
async fn refreshing_the_quotes_url_through_the_bus_takes_effect_without_a_restart() {
    let mut app = spawn_app().await;
    let before: Value = app.get_account("10001").await.json().await.expect("JSON");
    assert_eq!(
        before["quote"]["quote"], "",
        "no quotes service yet: {before}"
    );

    let quotes = MockServer::start().await;
    let quote = json!({"quote": "Refreshed.", "ipAddress": "10.0.0.9", "language": "en"});
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&quote))
        .mount(&quotes)
        .await;
    app.config.quotes_url = format!("{}/api/quote?strength=4", quotes.uri());
    app.refresh().await;

    // The client is swapped by a task that follows refreshes: poll until it has been.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let account: Value = app.get_account("10001").await.json().await.expect("JSON");
        if account.get("quote") == Some(&quote) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new quotes URL was not used: {account}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    app.stop().await;
}
