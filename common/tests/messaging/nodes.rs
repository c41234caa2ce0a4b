//! A broker given as a list of nodes: the client connects to a node that answers, names every
//! node when none does, and moves to another node when its own goes away, consumers and bus
//! subscription included. Each "node" here is a proxy to the test broker, so a test can make
//! one refuse or drop connections; `common/tests/cluster.rs` does the same on a real cluster.

use std::time::Duration;

use common::messaging::{AmqpMessaging, ExchangeSpec, LinkStatus, Messaging, MessagingError};
use serde_json::json;
use tokio::net::TcpListener;

use crate::helpers::*;

async fn node() -> TcpProxy {
    let broker = amqp_url();
    let address = broker
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5672");
    TcpProxy::start(address.parse().expect("the test broker's address")).await
}

/// A URL with a password on a loopback port where nothing listens.
async fn dead_node() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("amqp://guest:hunter2@127.0.0.1:{port}/%2f")
}

#[tokio::test]
async fn connects_to_a_node_that_answers_whatever_the_order() {
    let cleanup = Cleanup::new();
    let queue = work_queue(&cleanup, "nodes");
    let (first_dead, last_dead) = (dead_node().await, dead_node().await);
    let list = format!("{first_dead}, {},{last_dead}", amqp_url());
    // The order is shuffled each time: every client must find the live node.
    for round in 0..5 {
        let client = client(&list).await;
        client
            .publish_on_queue(&queue, message(&json!({ "round": round })))
            .await
            .expect("published through the live node");
        client.close().await.expect("closes");
    }
    let broker = Broker::connect().await;
    assert_eq!(broker.queue_depth(&queue.name).await, Some(5));
}

#[tokio::test]
async fn when_no_node_answers_the_error_names_every_node_without_its_password() {
    let refusing = node().await;
    refusing.refuse(true);
    let silent = node().await;
    silent.blackhole(true);
    let dead = dead_node().await;
    let list = format!(
        "{},{},{dead}",
        refusing
            .amqp_url()
            .replacen("guest:guest", "guest:hunter2", 1),
        silent
            .amqp_url()
            .replacen("guest:guest", "guest:hunter2", 1)
    );
    let mut settings = settings(&list);
    settings.connect_timeout = Duration::from_millis(500);
    settings.attempt_timeout = Duration::from_millis(300);
    let Err(error) = AmqpMessaging::connect(settings).await else {
        panic!("no node answers, yet the client connected");
    };
    assert!(
        matches!(error, MessagingError::ConnectTimeout { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(!message.contains("hunter2"), "{message}");
    for port in [
        refusing.address().port(),
        silent.address().port(),
        dead.rsplit(':')
            .next()
            .and_then(|p| p.split('/').next())
            .map_or(0, |p| p.parse().unwrap_or(0)),
    ] {
        assert!(
            message.contains(&format!("guest:***@127.0.0.1:{port}/%2f: ")),
            "node on port {port} not named with its error: {message}"
        );
    }
    assert!(message.contains("no answer within 300ms"), "{message}");
}

#[tokio::test]
async fn a_client_whose_node_goes_away_moves_to_another_and_loses_nothing() {
    let cleanup = Cleanup::new();
    let (first, second) = (node().await, node().await);
    // The first connection can only be made through `first`.
    second.refuse(true);
    let client = client(&format!("{},{}", first.amqp_url(), second.amqp_url())).await;
    let queue = work_queue(&cleanup, "failover");
    let (handler, mut work) = recorder();
    let mut subscription = client
        .subscribe_to_queue(&queue, "test", handler)
        .await
        .expect("subscribes to the work queue");
    let bus = ExchangeSpec::topic(cleanup.exchange(unique("bus")));
    let (bus_handler, mut events) = recorder();
    client
        .subscribe(&bus, "#", "anonymous", bus_handler)
        .await
        .expect("subscribes to the bus");

    client
        .publish_on_queue(&queue, message(&json!({ "before": true })))
        .await
        .expect("published before the move");
    receive(&mut work, 1).await;

    // `first` goes away for good; `second` answers from now on.
    second.refuse(false);
    cut(&first, &client).await;
    status_until(
        &client,
        "the client is connected again",
        LinkStatus::is_connected,
    )
    .await;
    within("the consumer is back", subscription.wait_until(true)).await;

    client
        .publish_on_queue(&queue, message(&json!({ "after": true })))
        .await
        .expect("published after the move");
    // At least once: the first message may come again if its ack went down with the node.
    loop {
        let got = receive(&mut work, 1).await.remove(0);
        if got.body_text() == r#"{"after":true}"# {
            break;
        }
        assert!(
            got.body_text() == r#"{"before":true}"# && got.redelivered,
            "unexpected delivery {got:?}"
        );
    }
    // The bus queue is this instance's own and went with the old connection: it is declared
    // and bound again on the new node, so events reach the instance.
    let broker = Broker::connect().await;
    broker
        .wait_until("the bus subscription is back", PATIENCE, || async {
            client
                .publish(&bus, "anyone", message(&json!({ "event": "refresh" })))
                .await
                .is_ok()
        })
        .await;
    let event = receive(&mut events, 1).await;
    assert_eq!(event[0].routing_key, "anyone");
    client.close().await.expect("closes");
}
