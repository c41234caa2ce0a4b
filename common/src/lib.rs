//! The library both goblog-rs services stand on.
//!
//! - [`messaging`]: an async AMQP 0-9-1 messaging trait ([`messaging::Messaging`]) with a lapin
//!   implementation that declares its topology once, confirms every publish, acks after the
//!   handler, dead-letters what cannot be processed and recovers from lost connections by
//!   itself.
//! - [`config`]: settings from a Spring Cloud Config server or the local `config-repo/`, layered
//!   with `GOBLOG_*` environment variables, typed, validated and refreshed by Spring Cloud Bus.
//! - [`bootstrap`]: settings, logging, broker, config bus, HTTP and shutdown, as both services
//!   start and stop.
//! - [`database`]: a service's own database through sqlx (SQLite or PostgreSQL by URL),
//!   migrated at startup, with the errors that tell "away" from "refused".
//! - [`notification`]: the VIP notification both services exchange, and the account id rule.
//! - [`contract`]: the metric names outside tools read.
//! - [`redact`] and [`secret`]: secrets never reach a log line.

pub mod bootstrap;
pub mod config;
pub mod contract;
pub mod database;
pub mod messaging;
pub mod notification;
pub mod redact;
pub mod secret;
pub mod telemetry;
