//! Handler tests: the routes in-process over mocks of the store and the messaging trait.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use common::messaging::{LinkStatus, MessagingError, MockMessaging, QueueSpec, QueueType};
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

use super::{AppState, router};
use crate::account::Account;
use crate::notify::Notifier;
use arc_swap::ArcSwap;

use crate::quotes::{QuotesClient, QuotesSettings};
use crate::store::{MockAccountStore, MockOutbox, OutboxEntry};

const QUEUE: &str = "vip_queue.test";

/// A store with accounts `10000` (VIP) and `10001`.
fn accounts() -> MockAccountStore {
    let mut store = MockAccountStore::new();
    store.expect_account().returning(|id| {
        Ok(["10000", "10001"].contains(&id).then(|| Account {
            id: id.to_owned(),
            name: format!("Person_{}", &id[4..]),
        }))
    });
    store.expect_is_usable().returning(|| true);
    store
}

struct Harness {
    state: AppState,
    broker: watch::Sender<LinkStatus>,
}

fn harness(accounts: MockAccountStore, messaging: MockMessaging, outbox: MockOutbox) -> Harness {
    let outbox: Arc<MockOutbox> = Arc::new(outbox);
    let notifier = Notifier::new(
        Arc::new(messaging),
        outbox.clone(),
        QueueSpec::work_queue(QUEUE, QueueType::Classic),
        2,
        Duration::from_secs(5),
    );
    // Nothing listens there: every quote fails fast and the breaker opens.
    let quotes = QuotesClient::new(&QuotesSettings {
        url: "http://127.0.0.1:9/api/quote".into(),
        failure_threshold: 1,
        ..QuotesSettings::default()
    })
    .expect("quotes client");
    let (broker_tx, broker) = watch::channel(LinkStatus::Connected);
    Harness {
        state: AppState {
            accounts: Arc::new(accounts),
            outbox,
            quotes: Arc::new(ArcSwap::from_pointee(quotes)),
            notifier: Arc::new(notifier),
            is_vip: Arc::new(|id| id == "10000"),
            broker,
            served_by: "10.0.0.7".into(),
            healthy: Arc::new(AtomicBool::new(true)),
        },
        broker: broker_tx,
    }
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, Value) {
    send(state, "GET", uri).await
}

async fn send(state: &AppState, method: &str, uri: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    let response = router(state.clone())
        .oneshot(request)
        .await
        .expect("infallible");
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn silent_messaging() -> MockMessaging {
    let mut messaging = MockMessaging::new();
    messaging.expect_publish_on_queue().never();
    messaging
}

#[tokio::test]
async fn a_vip_read_publishes_exactly_once_with_the_right_json() {
    let mut messaging = MockMessaging::new();
    messaging
        .expect_publish_on_queue()
        .times(1)
        .withf(|queue, message| {
            let body: Value = serde_json::from_slice(&message.body).unwrap_or_default();
            queue.name == QUEUE
                && message.kind == "VipNotification"
                && uuid::Uuid::parse_str(&message.message_id).is_ok()
                && body["accountId"] == "10000"
                && body["readAt"]
                    .as_str()
                    .and_then(common::notification::parse_read_at)
                    .is_some()
                && body.as_object().is_some_and(|o| o.len() == 2)
        })
        .returning(|_, _| Ok(()));
    let h = harness(accounts(), messaging, MockOutbox::new());

    let (status, body) = get(&h.state, "/accounts/10000").await;
    h.state.notifier.flushed().await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({"id": "10000", "name": "Person_0", "servedBy": "10.0.0.7"}),
        "no quote field when the quotes service gave nothing"
    );
}

#[tokio::test]
async fn a_non_vip_read_publishes_nothing() {
    let h = harness(accounts(), silent_messaging(), MockOutbox::new());
    let (status, body) = get(&h.state, "/accounts/10001").await;
    h.state.notifier.flushed().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Person_1");
}

#[tokio::test]
async fn an_unknown_account_is_a_json_404_and_publishes_nothing() {
    let h = harness(accounts(), silent_messaging(), MockOutbox::new());
    let (status, body) = get(&h.state, "/accounts/10099").await;
    h.state.notifier.flushed().await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no such account");
}

#[tokio::test]
async fn malformed_ids_unknown_paths_and_wrong_methods() {
    let h = harness(
        MockAccountStore::new(),
        silent_messaging(),
        MockOutbox::new(),
    );
    let long = "9".repeat(65);
    for id in ["100%2000", long.as_str(), "a.b"] {
        let (status, body) = get(&h.state, &format!("/accounts/{id}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (status, body) = get(&h.state, "/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no such resource");
    let (status, _) = send(&h.state, "POST", "/accounts/10000").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_failed_publish_puts_the_notification_in_the_outbox_with_its_message_id() {
    let mut messaging = MockMessaging::new();
    let (sent_tx, sent) = std::sync::mpsc::channel::<String>();
    messaging
        .expect_publish_on_queue()
        .times(1)
        .returning(move |_, message| {
            let _ = sent_tx.send(message.message_id);
            Err(MessagingError::Closed)
        });
    let mut outbox = MockOutbox::new();
    let (kept_tx, kept) = std::sync::mpsc::channel::<Vec<OutboxEntry>>();
    outbox.expect_append().times(1).returning(move |entries| {
        let _ = kept_tx.send(entries.to_vec());
        Ok(entries.len())
    });
    outbox.expect_depth().returning(|| Ok(1));
    let h = harness(accounts(), messaging, outbox);

    let (status, _) = get(&h.state, "/accounts/10000").await;
    h.state.notifier.flushed().await;

    assert_eq!(status, StatusCode::OK);
    let kept = kept.try_recv().expect("appended");
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].message_id, sent.try_recv().expect("published"));
    let body: Value = serde_json::from_slice(&kept[0].body).expect("JSON");
    assert_eq!(body["accountId"], "10000");
}

#[tokio::test]
async fn health_is_up_with_thebroker_down_and_503_when_switched_off_or_the_store_fails() {
    let mut outbox = MockOutbox::new();
    outbox.expect_depth().returning(|| Ok(4));
    let h = harness(accounts(), silent_messaging(), outbox);
    h.broker.send_replace(LinkStatus::Reconnecting);

    let (status, body) = get(&h.state, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "UP");
    assert_eq!(body["broker"], "reconnecting");
    assert_eq!(body["outboxDepth"], 4);

    let (status, _) = get(&h.state, "/testability/healthy/false").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get(&h.state, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "DOWN");
    let (status, _) = get(&h.state, "/testability/healthy/maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    get(&h.state, "/testability/healthy/true").await;
    assert_eq!(get(&h.state, "/health").await.0, StatusCode::OK);

    let mut broken = MockAccountStore::new();
    broken.expect_is_usable().returning(|| false);
    let mut outbox = MockOutbox::new();
    outbox.expect_depth().returning(|| Ok(0));
    let h = harness(broken, silent_messaging(), outbox);
    let (status, body) = get(&h.state, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["store"], "DOWN");
}
