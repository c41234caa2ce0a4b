//! accountservice: accounts over HTTP, and VIP notifications that are never lost.
//!
//! The binary is a thin `main`; everything it runs lives here so integration tests start the
//! very same service.
//!
//! - [`app`]: assembles the service and runs it until shutdown.
//! - [`routes`]: the HTTP API; [`error`]: how failures look to clients.
//! - [`notify`]: VIP notifications, published without delaying responses and kept in the
//!   outbox when the broker cannot take them.
//! - [`settings`]: the service's own settings.
//! - [`account`]: the account model (the account id rule is `common::notification`'s).
//! - [`store`]: the embedded redb database: the seeded accounts ([`store::AccountStore`]) and
//!   the durable outbox of VIP notifications not yet published ([`store::Outbox`]).
//! - [`quotes`]: the quotes-service client; it never fails a request and, through
//!   [`breaker`], stops calling a quotes service that keeps failing.

pub mod account;
pub mod app;
pub mod breaker;
pub mod error;
pub mod notify;
pub mod quotes;
pub mod routes;
pub mod settings;
pub mod store;
