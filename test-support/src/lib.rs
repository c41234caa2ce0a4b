//! Helpers for goblog-rs integration tests, which run against the real RabbitMQ.
//!
//! - [`unique`]: names no other test (or test run) uses, so tests run in parallel.
//! - [`Broker`]: a plain lapin connection to inspect and clean up queues and exchanges.
//! - [`TestDatabase`]: a SQLite file or PostgreSQL database of one test's own, dropped after.
//! - [`TcpProxy`]: sits between a client and the broker and can cut every connection, to
//!   test recovery without stopping the broker that other tests share.

mod broker;
mod database;
mod proxy;

pub use broker::{Broker, amqp_url};
pub use database::{TestDatabase, postgres_url};
pub use proxy::TcpProxy;

/// A name no other test uses: `{prefix}.{uuid}`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}.{}", uuid::Uuid::new_v4().simple())
}
