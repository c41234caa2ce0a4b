//! Messages reach the right consumers, with the properties the services rely on.

use std::collections::HashMap;

use common::messaging::{ExchangeSpec, Messaging, OutgoingMessage};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_message_published_on_a_queue_reaches_its_consumer_with_its_properties() {
    let broker = Broker::connect().await;
    let client = client(&amqp_url()).await;
    let queue = work_queue("roundtrip");
    let (handler, mut rx) = recorder();
    client
        .subscribe_to_queue(&queue, "test", handler)
        .await
        .expect("subscribes");

    let message =
        OutgoingMessage::json("VipNotification", &json!({"accountId": "10000"})).expect("json");
    client
        .publish_on_queue(&queue, message.clone())
        .await
        .expect("published and confirmed");

    let got = receive(&mut rx, 1).await.remove(0);
    assert_eq!(got.body, message.body);
    assert_eq!(got.message_id.as_deref(), Some(message.message_id.as_str()));
    assert_eq!(got.kind.as_deref(), Some("VipNotification"));
    assert_eq!(got.app_id.as_deref(), Some("messaging-test"));
    assert!(got.timestamp.is_some_and(|t| t > 1_700_000_000));
    assert!(!got.redelivered);

    client.close().await.expect("closes");
    broker
        .wait_until("the message is acked", PATIENCE, || async {
            broker.queue_depth(&queue.name).await == Some(0)
        })
        .await;
    broker.delete_work_queue(&queue.name).await;
}

#[tokio::test]
async fn replicas_share_a_work_queue_round_robin() {
    let broker = Broker::connect().await;
    let (first, second) = (client(&amqp_url()).await, client(&amqp_url()).await);
    let queue = work_queue("workqueue");
    let (handler_a, mut rx_a) = recorder();
    let (handler_b, mut rx_b) = recorder();
    first
        .subscribe_to_queue(&queue, "a", handler_a)
        .await
        .expect("a subscribes");
    second
        .subscribe_to_queue(&queue, "b", handler_b)
        .await
        .expect("b subscribes");

    // A quorum queue may confirm a consume before its leader counts the consumer.
    broker
        .wait_until("both consumers are registered", PATIENCE, || async {
            broker.consumer_count(&queue.name).await == 2
        })
        .await;
    for i in 0..4 {
        let message = message(&json!({ "i": i }));
        first
            .publish_on_queue(&queue, message)
            .await
            .expect("published");
    }
    receive(&mut rx_a, 2).await;
    receive(&mut rx_b, 2).await;

    let publisher = client(&amqp_url()).await;
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let (publisher, queue) = (publisher.clone(), queue.clone());
        let message = message(&json!({ "i": i }));
        sends.spawn(async move { publisher.publish_on_queue(&queue, message).await });
    }
    while let Some(result) = sends.join_next().await {
        result.expect("task").expect("published");
    }
    let mut counts = HashMap::from([("a", 0), ("b", 0)]);
    let mut total = 0;
    while total < 1000 {
        tokio::select! {
            Some(_) = rx_a.recv() => *counts.get_mut("a").expect("a") += 1,
            Some(_) = rx_b.recv() => *counts.get_mut("b").expect("b") += 1,
            () = tokio::time::sleep(PATIENCE) => panic!("only {total} of 1000 consumed"),
        }
        total = counts.values().sum::<usize>();
    }
    assert!(
        counts.values().all(|&n| n >= 400),
        "uneven split {counts:?}"
    );

    for client in [first, second, publisher] {
        client.close().await.expect("closes");
    }
    broker.delete_work_queue(&queue.name).await;
}

#[tokio::test]
async fn a_topic_subscription_with_hash_receives_every_routing_key() {
    let broker = Broker::connect().await;
    let client = client(&amqp_url()).await;
    let exchange = ExchangeSpec::topic(unique("bus"));
    let (handler, mut rx) = recorder();
    let subscription = client
        .subscribe(&exchange, "#", "anonymous", handler)
        .await
        .expect("subscribes");
    assert!(
        subscription
            .queue()
            .starts_with(&format!("{}.anonymous.", exchange.name))
    );

    for key in ["accountservice", "vipservice.x", ""] {
        let message =
            OutgoingMessage::json("RefreshRemoteApplicationEvent", &json!({ "key": key }))
                .expect("json");
        client
            .publish(&exchange, key, message)
            .await
            .expect("published");
    }
    let keys: Vec<_> = receive(&mut rx, 3)
        .await
        .into_iter()
        .map(|m| m.routing_key)
        .collect();
    assert_eq!(keys, ["accountservice", "vipservice.x", ""]);

    client.close().await.expect("closes");
    broker
        .wait_until(
            "the instance queue is gone after close",
            PATIENCE,
            || async { !broker.exists(subscription.queue()).await },
        )
        .await;
    broker.delete(&[], &[&exchange.name]).await;
}
