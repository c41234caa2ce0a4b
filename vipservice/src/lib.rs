//! vipservice: turns VIP notifications from `vip_queue` into offers, exactly once.
//!
//! The binary's `main` starts the shared bootstrap and then [`App`], which wires these together:
//!
//! - [`settings`]: the queue, the store's path and the (refreshable) business rule.
//! - [`offers`]: the VIP offer database on redb. [`offers::OfferWriter`] records notifications
//!   idempotently (by `message_id`) and in group commits: many notifications per durable
//!   transaction, each caller answered once its transaction is on disk.
//! - [`ledger`]: the stream that orders the replicas' claims, so that a notification that
//!   reached two replicas (a crash between commit and ack, a publisher's retry) is an offer in
//!   one store only.
//! - [`consumer`]: the queue's handler; a message is acked only once its claim is durable and
//!   in the ledger, and an invalid one is dead-lettered at once.
//! - [`routes`]: `/health` (consumer and ledger registered, store usable) and
//!   `/offers/{accountId}`.
//! - [`metrics`]: the names of the counters on `/metrics`.

mod app;
pub mod consumer;
pub mod error;
pub mod ledger;
pub mod metrics;
pub mod offers;
pub mod routes;
pub mod settings;

pub use app::App;
