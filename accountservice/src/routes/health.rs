//! `GET /health` and the original's `/testability/healthy/{bool}` switch.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use crate::error::ApiError;

/// 200 `UP` or 503 `DOWN`. `DOWN` when the account store cannot serve, when the outbox cannot
/// be written (VIP reads answer 503 then; `outbox` says why, naming the database), or by the
/// testability switch. A broker outage is reported but not fatal: the outbox holds the
/// notifications.
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store_up = state.accounts.is_usable();
    let switched_on = state.healthy.load(Ordering::Relaxed);
    let broker = state.broker.borrow().to_string();
    let outbox_down = state.outbox_down.borrow().clone();
    let outbox_depth = match &state.outbox {
        Some(outbox) => outbox.depth().await.ok().map(|(depth, _)| depth),
        None => None,
    };
    let up = store_up && switched_on && outbox_down.is_none();
    let body = json!({
        "status": if up { "UP" } else { "DOWN" },
        "store": if store_up { "UP" } else { "DOWN" },
        "outbox": outbox_down.map_or_else(|| "UP".to_owned(), |cause| format!("DOWN: {cause}")),
        "broker": broker,
        "outboxDepth": outbox_depth,
        "testabilityHealthy": switched_on,
    });
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Makes `/health` report `DOWN` (`false`) or not (`true`), to test orchestration.
pub async fn set_healthy(
    State(state): State<AppState>,
    Path(healthy): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let healthy: bool = healthy.parse().map_err(|_| ApiError::NotABool)?;
    state.healthy.store(healthy, Ordering::Relaxed);
    tracing::warn!(healthy, "health switched by /testability");
    Ok(Json(json!({ "healthy": healthy })))
}
