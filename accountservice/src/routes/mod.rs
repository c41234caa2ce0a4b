//! The HTTP API, one file per route group; [`router`] puts them together.

mod accounts;
mod health;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use axum::Router;
use axum::routing::get;
use common::messaging::LinkStatus;
use tokio::sync::watch;

use crate::error::no_route;
use crate::notifier::VipNotifier;
use crate::outbox::{OutboxDb, OutboxDown};
use crate::quotes::QuotesClient;
use crate::store::AccountStore;

/// Decides, per request, whether an account is VIP (from the settings current at that moment).
pub type VipPolicy = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<dyn AccountStore>,
    /// For `/health`: its depth. `None` in handler tests.
    pub outbox: Option<Arc<OutboxDb>>,
    /// Whether the outbox takes writes.
    pub outbox_down: OutboxDown,
    /// Replaced when a refresh changes `quotes.*`.
    pub quotes: Arc<ArcSwap<QuotesClient>>,
    pub notifier: Arc<dyn VipNotifier>,
    pub is_vip: VipPolicy,
    pub broker: watch::Receiver<LinkStatus>,
    /// `servedBy` in responses: this instance's address.
    pub served_by: Arc<str>,
    /// Set by `/testability/healthy/{bool}`, as in the original.
    pub healthy: Arc<AtomicBool>,
}

/// Every route of the service, with a JSON 404 for unknown paths (405 for a wrong method is
/// axum's).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/accounts/{account_id}", get(accounts::get_account))
        .route("/health", get(health::health))
        .route("/testability/healthy/{healthy}", get(health::set_healthy))
        .fallback(no_route)
        .with_state(state)
}

#[cfg(test)]
mod tests;
