//! What cannot be processed or delivered is dead-lettered or reported, never dropped silently,
//! and bad configuration gives errors that say what is wrong.

use std::sync::Arc;
use std::time::Duration;

use common::messaging::{
    AmqpMessaging, ExchangeSpec, Handler, HandlerError, HandlerFn, IncomingMessage, Messaging,
    MessagingError, QueueSpec, QueueType,
};
use serde_json::json;
use tokio::sync::mpsc;

use crate::helpers::*;

/// A handler that fails transiently on "flaky", rejects undecodable bodies, and reports what
/// it processed.
fn picky(calls: Calls) -> (Arc<dyn Handler>, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let handler = HandlerFn(move |message: IncomingMessage| {
        let body = message.body_text().into_owned();
        calls.record(&body);
        let outcome = match message.json::<serde_json::Value>() {
            Err(rejected) => Err(rejected),
            Ok(value) if value["kind"] == "flaky" => {
                Err(HandlerError::Retry("database busy".into()))
            }
            Ok(_) => {
                let _ = tx.send(body);
                Ok(())
            }
        };
        std::future::ready(outcome)
    });
    (Arc::new(handler), rx)
}

#[tokio::test]
async fn failing_and_poison_messages_are_dead_lettered_and_the_consumer_goes_on() {
    let cleanup = Cleanup::new();
    let broker = Broker::connect().await;
    let client = client(&amqp_url()).await;
    let queue = work_queue(&cleanup, "deadletter");
    let calls = Calls::default();
    let (handler, mut processed) = picky(calls.clone());
    client
        .subscribe_to_queue(&queue, "test", handler)
        .await
        .expect("subscribes");

    let flaky = json!({"kind": "flaky"});
    client
        .publish_on_queue(&queue, message(&flaky))
        .await
        .expect("published");
    broker
        .publish_raw(&queue.name, b"{truncated", "poison-1")
        .await;
    client
        .publish_on_queue(&queue, message(&json!({"kind": "fine"})))
        .await
        .expect("published");

    let done = tokio::time::timeout(PATIENCE, processed.recv())
        .await
        .expect("the good message is processed");
    assert_eq!(done.as_deref(), Some(r#"{"kind":"fine"}"#));
    let dlq = queue.dead_letter_queue();
    broker
        .wait_until("both bad messages are in the DLQ", PATIENCE, || async {
            broker.queue_depth(&dlq).await == Some(2)
        })
        .await;

    let dead_letters = broker.drain(&dlq).await;
    let dead: Vec<String> = dead_letters.iter().map(|m| m.text()).collect();
    assert!(dead.contains(&r#"{"kind":"flaky"}"#.to_owned()), "{dead:?}");
    assert!(dead.contains(&"{truncated".to_owned()), "{dead:?}");
    // Each says where it came from and why, for whoever reads the DLQ.
    for message in &dead_letters {
        let death = message.properties.headers.get("x-death");
        let first = death
            .and_then(|d| d.as_list()?.first()?.as_table())
            .unwrap_or_else(|| panic!("no x-death on {message:?}"));
        assert_eq!(
            first.get("queue").and_then(|q| q.as_str()),
            Some(queue.name.as_str())
        );
        assert_eq!(
            first.get("reason").and_then(|r| r.as_str()),
            Some("rejected")
        );
    }
    assert_eq!(
        calls.count(r#"{"kind":"flaky"}"#),
        4,
        "one try and three retries"
    );
    assert_eq!(calls.count("{truncated"), 1, "a poison body is not retried");
    assert_eq!(broker.queue_depth(&queue.name).await, Some(0));

    client.close().await.expect("closes");
}

#[tokio::test]
async fn an_unroutable_message_is_an_error_not_a_silent_success() {
    let cleanup = Cleanup::new();
    let broker = Broker::connect().await;
    let client = client(&amqp_url()).await;
    let exchange = ExchangeSpec::topic(cleanup.exchange(unique("nowhere")));
    let error = client
        .publish(&exchange, "no.queue.bound", message(&json!({})))
        .await
        .expect_err("unroutable");
    assert!(
        matches!(&error, MessagingError::Unroutable { target } if target.contains(&exchange.name)),
        "{error}"
    );

    // The publisher channel is still usable afterwards.
    let queue = work_queue(&cleanup, "after-return");
    client
        .publish_on_queue(&queue, message(&json!({})))
        .await
        .expect("published");
    assert_eq!(broker.queue_depth(&queue.name).await, Some(1));
    client.close().await.expect("closes");
}

#[tokio::test]
async fn a_queue_declared_with_other_arguments_is_named_in_the_error() {
    let cleanup = Cleanup::new();
    let client = client(&amqp_url()).await;
    let name = cleanup.work_queue(unique("mismatch"));
    let classic = QueueSpec::work_queue(&name, QueueType::Classic);
    let quorum = QueueSpec::work_queue(&name, QueueType::Quorum);
    client
        .publish_on_queue(&classic, message(&json!({})))
        .await
        .expect("published");

    let other = self::client(&amqp_url()).await;
    let error = other
        .publish_on_queue(&quorum, message(&json!({})))
        .await
        .expect_err("mismatch");
    match &error {
        MessagingError::TopologyMismatch {
            kind: "queue",
            name: queue,
            detail,
            hint,
        } => {
            assert_eq!(queue, &name);
            assert!(detail.contains("x-queue-type"), "{detail}");
            assert!(hint.contains("amqp.compat: go-p9"), "{hint}");
        }
        other => panic!("expected a topology mismatch, got {other}"),
    }
    let (handler, _rx) = recorder();
    let error = other
        .subscribe_to_queue(&quorum, "test", handler)
        .await
        .expect_err("mismatch");
    assert!(
        matches!(error, MessagingError::TopologyMismatch { .. }),
        "{error}"
    );

    for client in [client, other] {
        client.close().await.expect("closes");
    }
}

#[tokio::test]
async fn bad_urls_credentials_and_vhosts_give_typed_errors_without_the_password() {
    let cases = [
        ("", "empty"),
        ("http://guest:hunter2@127.0.0.1:5672/", "amqp://"),
        ("amqp://guest:hunter2@127.0.0.1:notaport/%2f", "guest:***@"),
    ];
    for (url, says) in cases {
        let error = AmqpMessaging::connect(settings(url))
            .await
            .err()
            .expect("invalid");
        assert!(
            matches!(error, MessagingError::InvalidUrl { .. }),
            "{url}: {error}"
        );
        let text = error.to_string();
        assert!(text.contains(says) && !text.contains("hunter2"), "{text}");
    }

    let wrong_password = amqp_url().replacen("guest:guest", "guest:hunter2", 1);
    let error = AmqpMessaging::connect(settings(&wrong_password))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(error, MessagingError::Authentication { ref user, .. } if user == "guest"),
        "{error}"
    );
    assert!(!error.to_string().contains("hunter2"), "{error}");

    let vhost = unique("no-such-vhost");
    let wrong_vhost = format!("{}/{vhost}", amqp_url().trim_end_matches("/%2f"));
    let error = AmqpMessaging::connect(settings(&wrong_vhost))
        .await
        .err()
        .expect("no vhost");
    assert!(
        matches!(error, MessagingError::UnknownVhost { vhost: ref v, .. } if *v == vhost),
        "{error}"
    );
}

#[tokio::test]
async fn the_first_connection_gives_up_after_its_timeout_naming_the_url() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr");
    let mut settings = settings(&format!("amqp://guest:hunter2@{closed_port}/%2f"));
    settings.connect_timeout = Duration::from_millis(300);
    let error = AmqpMessaging::connect(settings)
        .await
        .err()
        .expect("nothing listens");
    assert!(
        matches!(error, MessagingError::ConnectTimeout { .. }),
        "{error}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&closed_port.to_string()) && !text.contains("hunter2"),
        "{text}"
    );
}
