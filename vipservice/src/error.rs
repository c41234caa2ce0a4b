//! Errors at vipservice's two boundaries: starting up, and answering HTTP.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::bootstrap::BootstrapError;
use common::messaging::MessagingError;
use serde_json::json;

use common::database::DatabaseError;

/// Why the service could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("cannot subscribe to the VIP queue")]
    Subscribe(#[from] MessagingError),
}

/// Why a request failed. The client gets the status and a short message; causes are logged.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed account id")]
    InvalidAccountId,
    #[error("limit must be between 1 and {max}")]
    InvalidLimit { max: u32 },
    #[error("no offers for this account")]
    NoOffers,
    #[error("the offer database failed")]
    Store(#[from] DatabaseError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidAccountId | Self::InvalidLimit { .. } => StatusCode::BAD_REQUEST,
            Self::NoOffers => StatusCode::NOT_FOUND,
            Self::Store(error) if error.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = &self as &dyn std::error::Error, "request failed");
        }
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}
