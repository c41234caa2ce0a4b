//! vipservice: turns VIP notifications from `vip_queue` into offers, exactly once, in one
//! database that every replica shares (so replicas are stateless and interchangeable).
//!
//! The binary's `main` builds the [`Application`] (the shared bootstrap and these, wired
//! together) and runs it until SIGTERM:
//!
//! - [`settings`]: the queue, the database URL and the (refreshable) business rule.
//! - [`offers`]: the offers database through sqlx (SQLite or PostgreSQL). [`offers::OfferWriter`]
//!   records notifications in group commits, each with its `message_id` in the inbox table in
//!   the same transaction, so a redelivery anywhere conflicts on the primary key.
//! - [`consumer`]: the queue's handler; a message is acked only once its transaction
//!   committed, and an invalid one is dead-lettered at once.
//! - [`routes`]: `/health` (consumer registered, database answering) and
//!   `/offers/{accountId}`.

mod app;
pub mod consumer;
pub mod error;
pub mod offers;
pub mod routes;
pub mod settings;

pub use app::Application;
