//! Handler tests: the routes in-process over mocks of the store and the notifier.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use common::messaging::LinkStatus;
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

use super::{AppState, router};
use crate::account::Account;
use crate::notifier::MockVipNotifier;
use crate::outbox::AppendError;
use crate::quotes::{QuotesClient, QuotesSettings};
use crate::store::MockAccountStore;

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
    outbox_down: watch::Sender<Option<String>>,
}

fn harness(accounts: MockAccountStore, notifier: MockVipNotifier) -> Harness {
    // Nothing listens there: every quote fails fast and the breaker opens.
    let quotes = QuotesClient::new(&QuotesSettings {
        url: "http://127.0.0.1:9/api/quote".into(),
        failure_threshold: 1,
        ..QuotesSettings::default()
    })
    .expect("quotes client");
    let (broker_tx, broker) = watch::channel(LinkStatus::Connected);
    let (down_tx, outbox_down) = watch::channel(None);
    Harness {
        state: AppState {
            accounts: Arc::new(accounts),
            outbox: None,
            outbox_down,
            quotes: Arc::new(ArcSwap::from_pointee(quotes)),
            notifier: Arc::new(notifier),
            is_vip: Arc::new(|id| id == "10000"),
            broker,
            served_by: "10.0.0.7".into(),
            healthy: Arc::new(AtomicBool::new(true)),
        },
        broker: broker_tx,
        outbox_down: down_tx,
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

fn silent() -> MockVipNotifier {
    let mut notifier = MockVipNotifier::new();
    notifier.expect_notify().never();
    notifier
}

#[tokio::test]
async fn a_vip_read_is_answered_once_its_notification_is_durable() {
    let mut notifier = MockVipNotifier::new();
    notifier
        .expect_notify()
        .times(1)
        .withf(|account_id| account_id == "10000")
        .returning(|_| Ok(()));
    let h = harness(accounts(), notifier);

    let (status, body) = get(&h.state, "/accounts/10000").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!({
            "id": "10000",
            "name": "Person_0",
            "servedBy": "10.0.0.7",
            "quote": {"quote": "", "ipAddress": "", "language": ""}
        }),
        "the Go original's empty quote when the quotes service gave nothing"
    );
}

#[tokio::test]
async fn a_vip_read_whose_notification_cannot_be_stored_is_a_503_to_retry() {
    let mut notifier = MockVipNotifier::new();
    notifier
        .expect_notify()
        .times(1)
        .returning(|_| Err(AppendError::Unwritable("database or disk is full".into())));
    let h = harness(accounts(), notifier);

    let response = router(h.state.clone())
        .oneshot(
            Request::builder()
                .uri("/accounts/10000")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["status"], 503);
    let error = body["error"].as_str().unwrap_or_default();
    assert!(error.contains("try again"), "{body}");
    assert!(!error.contains("disk"), "internals stay in the log: {body}");
}

#[tokio::test]
async fn a_non_vip_read_notifies_nothing() {
    let h = harness(accounts(), silent());
    let (status, body) = get(&h.state, "/accounts/10001").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "Person_1");
}

#[tokio::test]
async fn an_unknown_account_is_a_json_404_and_notifies_nothing() {
    let h = harness(accounts(), silent());
    let (status, body) = get(&h.state, "/accounts/10099").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no such account");
}

#[tokio::test]
async fn malformed_ids_unknown_paths_and_wrong_methods() {
    let h = harness(MockAccountStore::new(), silent());
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
async fn health_is_up_with_the_broker_down_and_503_when_switched_off_the_store_or_the_outbox_fails()
{
    let h = harness(accounts(), silent());
    h.broker.send_replace(LinkStatus::Reconnecting);

    let (status, body) = get(&h.state, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "UP");
    assert_eq!(body["broker"], "reconnecting");
    assert_eq!(body["outbox"], "UP");

    let (status, _) = get(&h.state, "/testability/healthy/false").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get(&h.state, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "DOWN");
    let (status, _) = get(&h.state, "/testability/healthy/maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    get(&h.state, "/testability/healthy/true").await;
    assert_eq!(get(&h.state, "/health").await.0, StatusCode::OK);

    h.outbox_down.send_replace(Some(
        "database sqlite://data/x.db: cannot commit to the outbox: database or disk is full".into(),
    ));
    let (status, body) = get(&h.state, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let outbox = body["outbox"].as_str().unwrap_or_default();
    assert!(
        outbox.starts_with("DOWN") && outbox.contains("disk is full"),
        "{body}"
    );
    h.outbox_down.send_replace(None);
    assert_eq!(get(&h.state, "/health").await.0, StatusCode::OK);

    let mut broken = MockAccountStore::new();
    broken.expect_is_usable().returning(|| false);
    let h = harness(broken, silent());
    let (status, body) = get(&h.state, "/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["store"], "DOWN");
}
