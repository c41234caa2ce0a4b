//! The Go P9 stand-ins against the real broker: the publisher's messages reach the consumer
//! and look as Go's do, a Go declare that does not match what exists is refused with 406, and
//! the bus listener decides what is a refresh as Go does.

use std::time::Duration;

use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;
use test_support::go_p9::{BusEvent, publish_bus_event, publish_refresh};
use test_support::{
    Broker, Cleanup, GoAccountService, GoBusListener, GoVipService, Properties, amqp_url, unique,
};

const LIMIT: Duration = Duration::from_secs(10);

/// The properties Go's `PublishOnQueue` sets: the content type, nothing else.
fn go_properties() -> Properties {
    Properties {
        content_type: Some("application/json".into()),
        ..Properties::default()
    }
}

/// Checks a VIP notification body: Go's two fields, in Go's order, `readAt` in Go's format.
fn assert_vip_body(body: &str, account_id: &str) {
    let prefix = format!("{{\"accountId\":\"{account_id}\",\"readAt\":\"");
    assert!(body.starts_with(&prefix), "body {body}");
    let parsed: Value = serde_json::from_str(body).expect("the body is JSON");
    let read_at = parsed["readAt"].as_str().expect("readAt is a string");
    let (moment, zone) = read_at.split_at(read_at.len() - " +0000 UTC".len());
    assert_eq!(zone, " +0000 UTC", "readAt {read_at}");
    chrono::NaiveDateTime::parse_from_str(moment, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("readAt {read_at}: {e}"));
    assert!(
        !moment.ends_with('0') || !moment.contains('.'),
        "readAt {read_at}"
    );
}

#[tokio::test]
async fn what_go_publishes_reaches_the_go_consumer_auto_acked() {
    const N: usize = 20;
    let cleanup = Cleanup::new();
    let queue = cleanup.queue(unique("vip_queue"));
    let broker = Broker::connect().await;
    let vip = GoVipService::start(&amqp_url(), &queue)
        .await
        .expect("the Go consumer starts");
    let account = GoAccountService::connect(&amqp_url())
        .await
        .expect("the Go publisher connects");

    let mut sent = Vec::new();
    for i in 0..N {
        let id = (10_000 + i).to_string();
        sent.push(account.notify_vip(&queue, &id).await.expect("published"));
    }
    let received = vip.wait_for(N, LIMIT).await;

    let bodies: Vec<String> = received.iter().map(|m| m.text()).collect();
    assert_eq!(bodies, sent, "every message, in order");
    for (i, message) in received.iter().enumerate() {
        assert_vip_body(&message.text(), &(10_000 + i).to_string());
        assert_eq!(message.properties, go_properties());
        assert_eq!(
            (message.exchange.as_str(), message.routing_key.as_str()),
            ("", queue.as_str())
        );
    }
    // Auto-ack: once delivered, nothing goes back to the queue when the consumer leaves.
    vip.close().await.expect("closed");
    assert_eq!(broker.queue_depth(&queue).await, Some(0));
    account.close().await.expect("closed");
}

#[tokio::test]
async fn without_a_consumer_go_leaves_transient_json_messages_in_a_queue_it_declared() {
    let cleanup = Cleanup::new();
    let queue = cleanup.queue(unique("vip_queue"));
    let broker = Broker::connect().await;
    let account = GoAccountService::connect(&amqp_url())
        .await
        .expect("connects");

    let sent = account
        .notify_vip(&queue, "10000")
        .await
        .expect("published");
    account
        .notify_vip(&queue, "10000")
        .await
        .expect("published");

    broker
        .wait_until("both are in the queue Go declared", LIMIT, || async {
            broker.queue_depth(&queue).await == Some(2)
        })
        .await;
    let taken = broker.consume(&queue, 2, LIMIT).await;
    assert_eq!(taken.len(), 2);
    assert_eq!(taken[0].text(), sent);
    for message in &taken {
        assert_vip_body(&message.text(), "10000");
        assert_eq!(
            message.properties,
            go_properties(),
            "no delivery mode, id or headers"
        );
        assert!(!message.redelivered);
    }
}

fn assert_refused_durable(error: &test_support::GoP9Error, queue: &str) {
    assert!(error.is_precondition_failed(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("queue.declare")
            && text.contains("PRECONDITION_FAILED")
            && text.contains("durable")
            && text.contains(queue),
        "{text}"
    );
}

#[tokio::test]
async fn a_go_declare_against_a_durable_queue_is_refused_with_406() {
    let cleanup = Cleanup::new();
    let queue = cleanup.queue(unique("vip_queue"));
    let broker = Broker::connect().await;
    broker.declare_durable(&queue).await;
    let account = GoAccountService::connect(&amqp_url())
        .await
        .expect("connects");

    let published = account.notify_vip(&queue, "10000").await;
    assert_refused_durable(&published.expect_err("Go's publish was refused"), &queue);
    assert_eq!(
        broker.queue_depth(&queue).await,
        Some(0),
        "the message is lost"
    );

    let started = GoVipService::start(&amqp_url(), &queue).await;
    let error = started.err().expect("the Go consumer does not start");
    assert_refused_durable(&error, &queue);
    assert_eq!(broker.consumer_count(&queue).await, 0);

    // Like the Go process, the publisher carries on: with the queue gone, it declares its own.
    broker.delete(&[&queue], &[]).await;
    account
        .notify_vip(&queue, "10000")
        .await
        .expect("published");
    broker
        .wait_until("the message is in Go's queue", LIMIT, || async {
            broker.queue_depth(&queue).await == Some(1)
        })
        .await;
}

#[tokio::test]
async fn a_go_bus_subscription_to_an_inequivalent_exchange_is_refused_with_406() {
    let cleanup = Cleanup::new();
    let exchange = cleanup.exchange(unique("springCloudBus"));
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("connects");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("declared");

    let error = GoBusListener::start(&amqp_url(), &exchange, "vipservice")
        .await
        .err()
        .expect("the subscription is refused");
    assert!(error.is_precondition_failed(), "{error}");
    assert!(error.to_string().contains("exchange.declare"), "{error}");
    connection.close(200, "".into()).await.expect("closed");
}

/// Publishes `event` to `exchange` with `routing_key` (which Spring's producer never uses).
async fn publish_with_key(exchange: &str, routing_key: &str, event: &BusEvent) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("connects");
    let channel = connection.create_channel().await.expect("channel");
    channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            Default::default(),
            event.to_json().as_bytes(),
            Default::default(),
        )
        .await
        .expect("published");
    connection.close(200, "".into()).await.expect("closed");
}

#[tokio::test]
async fn the_bus_listener_refreshes_when_the_destination_contains_its_name() {
    let cleanup = Cleanup::new();
    let exchange = cleanup.exchange(unique("springCloudBus"));
    let broker = Broker::connect().await;
    let url = amqp_url();
    let listener = GoBusListener::start(&url, &exchange, "vipservice")
        .await
        .expect("subscribed");
    let queue = listener.queue().to_owned();
    assert!(queue.starts_with("amq.gen-"), "server-named: {queue}");
    assert_eq!(broker.consumer_count(&queue).await, 1);

    // Go binds with the exchange's name, not Spring consumers' `#`: another key misses it.
    publish_with_key(
        &exchange,
        "not-the-bus-name",
        &BusEvent::refresh("vipservice:**"),
    )
    .await;
    // A refresh of every app (to Spring) and one of another app: not Go's business.
    publish_refresh(&url, &exchange, "**")
        .await
        .expect("published");
    publish_refresh(&url, &exchange, "accountservice:**")
        .await
        .expect("published");
    let sent = publish_refresh(&url, &exchange, "vipservice:**")
        .await
        .expect("published");

    let refresh = listener.wait_for_refresh(LIMIT).await;
    assert_eq!(refresh.as_ref(), Some(&sent));
    let received = listener.received();
    assert_eq!(
        received.len(),
        3,
        "the two before arrived first: {received:?}"
    );
    assert!(!received[0].is_refresh && !received[1].is_refresh && received[2].is_refresh);
    assert_eq!(received[2].message.routing_key, exchange, "Spring's key");
    assert_eq!(received[2].message.exchange, exchange);

    // Go's substring test: a lookalike matches too, and the event's type does not matter.
    let lookalike = publish_refresh(&url, &exchange, "xvipservice:**")
        .await
        .expect("published");
    assert_eq!(listener.wait_for_refresh(LIMIT).await, Some(lookalike));
    let ack = BusEvent {
        kind: "AckRemoteApplicationEvent".into(),
        ..BusEvent::refresh("vipservice:test:**")
    };
    publish_bus_event(&url, &exchange, ack.to_json().as_bytes())
        .await
        .expect("published");
    assert_eq!(listener.wait_for_refresh(LIMIT).await, Some(ack));

    // What does not parse is no refresh; what follows it still is.
    publish_bus_event(&url, &exchange, b"garbage")
        .await
        .expect("published");
    let last = publish_refresh(&url, &exchange, "vipservice-test:**")
        .await
        .expect("published");
    assert_eq!(listener.wait_for_refresh(LIMIT).await, Some(last));
    let received = listener.received();
    assert_eq!(received.len(), 7);
    assert!(received[5].event.is_err() && !received[5].is_refresh);
    assert_eq!(listener.refreshes().len(), 4);
    assert_eq!(
        listener.wait_for_refresh(Duration::from_millis(100)).await,
        None
    );

    listener.close().await.expect("closed");
    assert!(!broker.exists(&queue).await, "its queue is deleted");
}

#[tokio::test]
async fn a_dropped_bus_listener_leaves_no_queue() {
    let cleanup = Cleanup::new();
    let exchange = cleanup.exchange(unique("springCloudBus"));
    let broker = Broker::connect().await;
    let listener = GoBusListener::start(&amqp_url(), &exchange, "accountservice")
        .await
        .expect("subscribed");
    let queue = listener.queue().to_owned();
    assert!(broker.exists(&queue).await);

    drop(listener);
    assert!(!broker.exists(&queue).await, "its queue is deleted");
}

#[tokio::test]
async fn the_go_consumer_stops_for_good_when_its_queue_is_deleted() {
    let cleanup = Cleanup::new();
    let queue = cleanup.queue(unique("vip_queue"));
    let broker = Broker::connect().await;
    let vip = GoVipService::start(&amqp_url(), &queue)
        .await
        .expect("the Go consumer starts");
    assert!(vip.is_consuming());

    broker.delete(&[&queue], &[]).await;
    broker
        .wait_until("the Go consumer has stopped", LIMIT, || async {
            !vip.is_consuming()
        })
        .await;
    // Nothing subscribes again: a queue of that name gets no consumer.
    let account = GoAccountService::connect(&amqp_url())
        .await
        .expect("connects");
    account
        .notify_vip(&queue, "10000")
        .await
        .expect("published");
    assert_eq!(broker.consumer_count(&queue).await, 0);
    assert!(vip.received().is_empty());
}
