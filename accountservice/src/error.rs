//! Errors as HTTP clients see them: a status and a JSON body that never shows internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

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
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidAccountId | Self::NotABool => StatusCode::BAD_REQUEST,
            Self::AccountNotFound | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Store(cause) = &self {
            tracing::error!(error = cause as &dyn std::error::Error, "request failed");
        }
        let body = json!({"error": self.to_string(), "status": status.as_u16()});
        (status, Json(body)).into_response()
    }
}

/// The fallback for paths no route matches: a JSON 404 like every other error.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}
