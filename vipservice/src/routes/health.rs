//! `GET /health`: healthy only while the service can do its job. The Go original answered
//! "OK" while its consumer was dead; here a cancelled consumer (say, its queue deleted) makes
//! the instance unhealthy until the messaging layer has re-subscribed it, and so does an
//! offers database that does not answer (named, password redacted, with the cause).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::time::timeout;

use super::AppState;

/// How long the database may take to answer the health check's ping.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let consumer_active = state.consumer.is_active();
    let refused = state.database_down.borrow().clone();
    let database_error = match timeout(PING_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => refused,
        Ok(Err(error)) => Some(error.with_causes()),
        Err(_) => Some(format!("no answer within {PING_TIMEOUT:?}")),
    };
    let up = consumer_active && database_error.is_none();
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut database = json!({ "url": state.db.url(), "up": database_error.is_none() });
    if let Some(error) = database_error {
        database["error"] = Value::String(error);
    }
    let body = json!({
        "status": if up { "UP" } else { "DOWN" },
        "consumer": { "queue": state.consumer.queue(), "active": consumer_active },
        "database": database,
    });
    (status, Json(body))
}
