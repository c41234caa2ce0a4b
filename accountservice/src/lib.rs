//! accountservice: accounts over HTTP, and VIP notifications that are never lost.
//!
//! The binary is a thin `main`; everything it runs lives here so integration tests start the
//! very same service.
//!
//! - [`app`]: assembles the service and runs it until shutdown.
//! - [`routes`]: the HTTP API; [`error`]: how failures look to clients.
//! - [`notifier`] and [`outbox`]: a VIP read is answered once its notification is durable in
//!   the outbox (a database through sqlx: SQLite, or the stack's PostgreSQL); the relay
//!   publishes it from there at once and removes it on the broker's confirm.
//! - [`settings`]: the service's own settings.
//! - [`account`]: the account model (the account id rule is `common::notification`'s).
//! - [`store`]: the embedded redb database of the seeded accounts ([`store::AccountStore`]).
//! - [`quotes`]: the quotes-service client; it never fails a request and, through
//!   [`breaker`], stops calling a quotes service that keeps failing.

pub mod account;
pub mod app;
pub mod breaker;
pub mod error;
pub mod notifier;
pub mod outbox;
pub mod quotes;
pub mod routes;
pub mod settings;
pub mod store;
