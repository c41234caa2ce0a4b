//! `GET /accounts/{accountId}`: the account, who served it, a quote; a VIP read is answered
//! only once its notification is durable.

use axum::Json;
use axum::extract::{Path, State};
use common::notification::is_valid_account_id;
use serde::Serialize;

use super::AppState;
use crate::error::ApiError;
use crate::quotes::Quote;

/// The Go original's account JSON. Without a quote (the quotes service failed or is
/// absent) `quote` is there with empty fields, as the original sends it, so that its clients
/// parse ours alike.
#[derive(Debug, Serialize)]
pub struct AccountResponse {
    pub id: String,
    pub name: String,
    #[serde(rename = "servedBy")]
    pub served_by: String,
    pub quote: Quote,
}

#[tracing::instrument(name = "get account", skip_all, fields(account_id = %account_id))]
pub async fn get_account(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
) -> Result<Json<AccountResponse>, ApiError> {
    if !is_valid_account_id(&account_id) {
        return Err(ApiError::InvalidAccountId);
    }
    let account = state
        .accounts
        .account(&account_id)?
        .ok_or(ApiError::AccountNotFound)?;
    if (state.is_vip)(&account.id) {
        state.notifier.notify(&account.id).await?;
    }
    let quote = state.quotes.load_full().quote().await;
    Ok(Json(AccountResponse {
        id: account.id,
        name: account.name,
        served_by: state.served_by.to_string(),
        quote: quote.unwrap_or_default(),
    }))
}
