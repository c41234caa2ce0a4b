//! vipservice: turns VIP notifications from `vip_queue` into offers, exactly once.
//!
//! This library holds the service's domain and storage; the binary wires it to the broker and
//! HTTP.
//!
//! - [`offers`]: the VIP offer database on redb. [`offers::OfferWriter`] records notifications
//!   idempotently (by `message_id`) and in group commits: many notifications per durable
//!   transaction, each caller answered once its transaction is on disk.

pub mod offers;
