//! vipservice: turns VIP notifications from `vip_queue` into offers, exactly once.
//!
//! The binary's `main` starts the shared bootstrap and then [`App`], which wires these together:
//!
//! - [`settings`]: the queue, the store's path and the (refreshable) business rule.
//! - [`offers`]: the VIP offer database on redb. [`offers::OfferWriter`] records notifications
//!   idempotently (by `message_id`) and in group commits: many notifications per durable
//!   transaction, each caller answered once its transaction is on disk.
//! - [`consumer`]: the queue's handler; a message is acked only once its offer is durable,
//!   and an invalid one is dead-lettered at once.
//! - [`routes`]: `/health` (consumer registered and store usable) and `/offers/{accountId}`.

mod app;
pub mod consumer;
pub mod error;
pub mod offers;
pub mod routes;
pub mod settings;

pub use app::App;
