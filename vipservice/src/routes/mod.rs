//! vipservice's own HTTP routes; the bootstrap adds `/info` and `/metrics`.

mod health;
mod offers;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use common::messaging::Subscription;

use crate::offers::{DatabaseDown, OfferDb};

/// What the handlers read.
#[derive(Clone)]
pub struct AppState {
    pub db: Arc<OfferDb>,
    /// Why the writer's last commit failed, if it did: a database that answers reads but
    /// refuses writes (a full disk) is down for this service.
    pub database_down: DatabaseDown,
    /// The `vip_queue` consumer, for `/health`.
    pub consumer: Subscription,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/offers/{account_id}", get(offers::offers))
        .with_state(state)
}
