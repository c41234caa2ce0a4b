//! The client rides out lost connections: it reconnects, resumes consumers, and loses nothing.

use std::collections::HashSet;
use std::time::Duration;

use common::messaging::{LinkStatus, Messaging, MessagingError};
use serde_json::json;

use crate::helpers::*;

async fn proxy() -> TcpProxy {
    TcpProxy::start("127.0.0.1:5672".parse().expect("addr")).await
}

#[tokio::test]
async fn nothing_published_before_during_or_after_a_cut_is_lost() {
    let cleanup = Cleanup::new();
    let proxy = proxy().await;
    let publisher = client(&proxy.amqp_url()).await;
    let consumer = client(&proxy.amqp_url()).await;
    let queue = work_queue(&cleanup, "cut");
    let (handler, mut rx) = recorder();
    let subscription = consumer
        .subscribe_to_queue(&queue, "test", handler)
        .await
        .expect("subscribes");

    const BATCH: usize = 200;
    const TOTAL: usize = 3 * BATCH;
    let mut sends = tokio::task::JoinSet::new();
    let mut send_batch = |batch: usize| {
        for i in batch * BATCH..(batch + 1) * BATCH {
            let (publisher, queue) = (publisher.clone(), queue.clone());
            let message = message(&json!({ "i": i }));
            let id = message.message_id.clone();
            sends.spawn(async move {
                publisher
                    .publish_on_queue(&queue, message)
                    .await
                    .map(|()| id)
            });
        }
    };
    // Before: a batch in flight when the connections are cut.
    send_batch(0);
    tokio::task::yield_now().await;
    proxy.refuse(true);
    proxy.cut();
    // During: published while both clients are reconnecting.
    let reconnecting = |s: &LinkStatus| *s == LinkStatus::Reconnecting;
    status_until(&publisher, "the publisher reconnects", reconnecting).await;
    status_until(&consumer, "the consumer reconnects", reconnecting).await;
    send_batch(1);
    proxy.refuse(false);
    // After: published once the connection is back.
    status_until(
        &publisher,
        "the publisher is back",
        LinkStatus::is_connected,
    )
    .await;
    send_batch(2);

    let mut published = HashSet::new();
    while let Some(result) = sends.join_next().await {
        published.insert(
            result
                .expect("task")
                .expect("every publish is confirmed eventually"),
        );
    }
    assert_eq!(published.len(), TOTAL);

    // Duplicates are allowed (a republish after a lost confirm, a redelivery after a lost
    // ack) but only of published ids; every published id must arrive.
    let mut consumed = HashSet::new();
    while consumed.len() < TOTAL {
        let message = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("consumed {} of {TOTAL}", consumed.len()))
            .expect("handler alive");
        let id = message.message_id.expect("message id");
        assert!(published.contains(&id), "a message nobody published: {id}");
        consumed.insert(id);
    }
    assert!(subscription.is_active());
    assert!(publisher.status().borrow().is_connected());

    for client in [publisher, consumer] {
        client.close().await.expect("closes");
    }
}

#[tokio::test]
async fn a_publish_during_a_long_outage_fails_with_a_typed_error_after_its_bound() {
    let cleanup = Cleanup::new();
    let broker = Broker::connect().await;
    let proxy = proxy().await;
    let mut settings = settings(&proxy.amqp_url());
    settings.outage_wait = Duration::from_millis(300);
    let client = common::messaging::AmqpMessaging::connect(settings)
        .await
        .expect("connects");
    let queue = work_queue(&cleanup, "outage");
    cut(&proxy, &client).await;
    let message = message(&json!({}));
    let error = client
        .publish_on_queue(&queue, message.clone())
        .await
        .expect_err("broker away");
    assert!(
        matches!(error, MessagingError::Unavailable { .. }),
        "{error}"
    );
    assert!(error.is_transient());

    proxy.refuse(false);
    status_until(&client, "the client is back", LinkStatus::is_connected).await;
    client
        .publish_on_queue(&queue, message)
        .await
        .expect("published once the broker is back");
    assert_eq!(broker.queue_depth(&queue.name).await, Some(1));

    client.close().await.expect("closes");
}

#[tokio::test]
async fn a_consumer_whose_queue_is_deleted_comes_back() {
    let cleanup = Cleanup::new();
    let broker = Broker::connect().await;
    let client = client(&amqp_url()).await;
    let queue = work_queue(&cleanup, "cancelled");
    let (handler, mut rx) = recorder();
    let mut subscription = client
        .subscribe_to_queue(&queue, "test", handler)
        .await
        .expect("subscribes");
    assert!(subscription.is_active());

    broker.delete_work_queue(&queue.name).await;
    within(
        "the broker cancels the consumer",
        subscription.wait_until(false),
    )
    .await;
    within("the consumer re-subscribes", subscription.wait_until(true)).await;

    client
        .publish_on_queue(&queue, message(&json!({})))
        .await
        .expect("published");
    receive(&mut rx, 1).await;
    client.close().await.expect("closes");
}

#[tokio::test]
async fn close_lets_in_flight_handlers_finish_and_ack() {
    let cleanup = Cleanup::new();
    let broker = Broker::connect().await;
    let client = client(&amqp_url()).await;
    let queue = work_queue(&cleanup, "graceful");
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let (release, gate) = tokio::sync::watch::channel(false);
    let handler = common::messaging::HandlerFn(move |_| {
        let (started_tx, mut gate) = (started_tx.clone(), gate.clone());
        async move {
            let _ = started_tx.send(());
            let _ = gate.wait_for(|open| *open).await;
            Ok(())
        }
    });
    let mut subscription = client
        .subscribe_to_queue(&queue, "test", std::sync::Arc::new(handler))
        .await
        .expect("subscribes");
    for _ in 0..3 {
        client
            .publish_on_queue(&queue, message(&json!({})))
            .await
            .expect("published");
    }
    for _ in 0..3 {
        tokio::time::timeout(PATIENCE, started.recv())
            .await
            .expect("handler started");
    }
    let closing = tokio::spawn({
        let client = client.clone();
        async move { client.close().await }
    });
    within("the consumer stops", subscription.wait_until(false)).await;
    assert_eq!(
        broker.queue_depth(&queue.name).await,
        Some(0),
        "none went back to the queue"
    );
    release.send_replace(true);
    closing.await.expect("task").expect("closes");
    // All three were acked before the connection closed.
    assert_all_acked(&broker, &queue.name).await;
}

#[tokio::test]
async fn one_subscription_stops_while_the_others_go_on() {
    let cleanup = Cleanup::new();
    let broker = Broker::connect().await;
    let client = client(&amqp_url()).await;
    let (stopped_queue, kept_queue) = (
        work_queue(&cleanup, "stopped"),
        work_queue(&cleanup, "kept"),
    );
    let (stopped_handler, mut stopped_rx) = recorder();
    let (kept_handler, mut kept_rx) = recorder();
    let stopped = client
        .subscribe_to_queue(&stopped_queue, "test", stopped_handler)
        .await
        .expect("subscribes");
    let kept = client
        .subscribe_to_queue(&kept_queue, "test", kept_handler)
        .await
        .expect("subscribes");

    tokio::time::timeout(PATIENCE, stopped.stop())
        .await
        .expect("stops");
    assert!(!stopped.is_active());
    assert_eq!(broker.consumer_count(&stopped_queue.name).await, 0);
    for queue in [&stopped_queue, &kept_queue] {
        client
            .publish_on_queue(queue, message(&json!({})))
            .await
            .expect("published");
    }
    receive(&mut kept_rx, 1).await;
    assert!(kept.is_active());
    assert_eq!(broker.queue_depth(&stopped_queue.name).await, Some(1));
    assert!(
        stopped_rx.try_recv().is_err(),
        "a stopped consumer got a message"
    );

    client.close().await.expect("closes");
}
