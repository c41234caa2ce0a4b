//! Errors at vipservice's two boundaries: starting up, and answering HTTP.

use std::path::PathBuf;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::messaging::MessagingError;
use serde_json::json;

use crate::offers::OfferError;

/// Why the service could not assemble itself.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create the folder {path} of the offer database (setting `store.path`)")]
    StoreFolder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] OfferError),
    #[error("cannot start the offer writer thread")]
    Writer(#[source] std::io::Error),
    #[error("cannot subscribe to the VIP queue or its claim ledger")]
    Subscribe(#[from] MessagingError),
}

/// Why a request failed. The client gets the status and a short message; causes are logged.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed account id")]
    InvalidAccountId,
    #[error("no offers for this account")]
    NoOffers,
    #[error("the offer database failed")]
    Store(#[from] OfferError),
    #[error("the offer query did not finish")]
    Query(#[from] tokio::task::JoinError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidAccountId => StatusCode::BAD_REQUEST,
            Self::NoOffers => StatusCode::NOT_FOUND,
            Self::Store(_) | Self::Query(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
