//! Errors as HTTP clients see them: a status and a JSON body that never shows internals.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::outbox::AppendError;
use crate::store::StoreError;

/// What a 503 asks the client to wait: the outbox writer probes the database twice a second.
const RETRY_AFTER_SECONDS: &str = "1";

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The account id breaks the account id rule.
    #[error("the account id is not 1 to 64 characters of [A-Za-z0-9_-]")]
    InvalidAccountId,
    /// No account has this id.
    #[error("no such account")]
    AccountNotFound,
    /// No route matches the path.
    #[error("no such resource")]
    NoRoute,
    /// A path parameter that must be `true` or `false`.
    #[error("expected true or false")]
    NotABool,
    /// The store failed; the cause is logged, not sent.
    #[error("the account store failed")]
    Store(#[from] StoreError),
    /// A VIP read whose notification could not be made durable: not answered 200, so the
    /// client knows to try again. The cause is logged (and on `/health`), not sent.
    #[error("the notification of this VIP read cannot be stored; try again later")]
    Outbox(#[from] AppendError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidAccountId | Self::NotABool => StatusCode::BAD_REQUEST,
            Self::AccountNotFound | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Outbox(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Store(cause) = &self {
            tracing::error!(error = cause as &dyn std::error::Error, "request failed");
        }
        // Logged once per outage by the outbox writer; per request only at debug.
        if let Self::Outbox(cause) = &self {
            tracing::debug!(error = %cause, "VIP read refused");
        }
        let body = json!({"error": self.to_string(), "status": status.as_u16()});
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// The fallback for paths no route matches: a JSON 404 like every other error.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}
