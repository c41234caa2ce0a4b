//! vipservice: turns VIP notifications from `vip_queue` into offers, exactly once.
//!
//! This library holds the service's domain and storage; the binary wires it to the broker and
//! HTTP.
//!
//! - [`notification`]: decoding and validating a notification body, in RFC 3339 or the Go
//!   original's time format; a body that cannot be decoded says why.
//! - [`offers`]: the VIP offer database on redb. [`offers::OfferWriter`] records notifications
//!   idempotently (by `message_id`) and in group commits: many notifications per durable
//!   transaction, each caller answered once its transaction is on disk.

pub mod notification;
pub mod offers;
