//! `GET /health`: healthy only while the service can do its job. The Go original answered
//! "OK" while its consumer was dead; here a cancelled consumer (say, its queue deleted) makes
//! the instance unhealthy until the messaging layer has re-subscribed it. So does a lost ledger
//! reader: claims would then never become offers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let consumer_active = state.consumer.is_active();
    let ledger_active = state.ledger.is_active();
    let db = state.db.clone();
    let store_usable = tokio::task::spawn_blocking(move || db.is_usable())
        .await
        .unwrap_or(false);
    let up = consumer_active && ledger_active && store_usable;
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if up { "UP" } else { "DOWN" },
        "consumer": { "queue": state.consumer.queue(), "active": consumer_active },
        "ledger": { "stream": state.ledger.queue(), "active": ledger_active },
        "store": { "usable": store_usable },
    });
    (status, Json(body))
}
