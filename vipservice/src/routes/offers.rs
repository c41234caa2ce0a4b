//! `GET /offers/{accountId}?limit=N`: the newest offers made to an account, newest first,
//! from the database every replica shares (so every replica answers the same).

use axum::Json;
use axum::extract::{Path, Query, State};
use common::notification::is_valid_account_id;
use serde::Deserialize;

use super::AppState;
use crate::error::ApiError;
use crate::offers::Offer;

/// How many offers an answer lists unless asked, and at most.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize)]
pub struct Page {
    limit: Option<u32>,
}

pub async fn offers(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<Vec<Offer>>, ApiError> {
    if !is_valid_account_id(&account_id) {
        return Err(ApiError::InvalidAccountId);
    }
    let limit = page.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::InvalidLimit { max: MAX_LIMIT });
    }
    let offers = state.db.offers_for(&account_id, limit).await?;
    if offers.is_empty() {
        return Err(ApiError::NoOffers);
    }
    Ok(Json(offers))
}
