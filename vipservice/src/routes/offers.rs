//! `GET /offers/{accountId}`: the offers made to an account, newest first.

use axum::Json;
use axum::extract::{Path, State};
use common::notification::is_valid_account_id;

use super::AppState;
use crate::error::ApiError;
use crate::offers::Offer;

pub async fn offers(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
) -> Result<Json<Vec<Offer>>, ApiError> {
    if !is_valid_account_id(&account_id) {
        return Err(ApiError::InvalidAccountId);
    }
    // redb reads touch the disk: keep them off the async threads.
    let offers = tokio::task::spawn_blocking(move || state.db.offers_for(&account_id)).await??;
    if offers.is_empty() {
        return Err(ApiError::NoOffers);
    }
    Ok(Json(offers))
}
