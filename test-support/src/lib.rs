//! Helpers for goblog-rs integration tests, which run against the real RabbitMQ.
//!
//! - [`unique`]: names no other test (or test run) uses, so tests run in parallel.
//! - [`Cleanup`]: a guard that deletes the queues and exchanges a test declared when
//!   it is dropped, so a failing test leaves nothing on the broker either.
//! - [`Broker`]: a plain connection to inspect queues, publish raw bytes and take messages.
//! - [`TestDatabase`]: a SQLite file or PostgreSQL database of one test's own, dropped after.
//! - [`SmallDisk`]: a small tmpfs a test fills, for full-disk behaviour (needs root).
//! - [`TcpProxy`]: sits between a client and the broker and can cut every connection, to
//!   test recovery without stopping the broker that other tests share.
//! - [`Cluster`]: a RabbitMQ cluster of nodes of its own on this machine (needs root), whose
//!   nodes a test kills, stops and restarts; `TEST_RABBITMQ_ROOT` runs them from another
//!   RabbitMQ's root file system (4.0, made by `scripts/ensure-rabbitmq4-root.sh`).
//! - [`go_p9`]: stand-ins for the Go P9 services ([`GoAccountService`], [`GoVipService`],
//!   [`GoBusListener`]) speaking AMQP exactly as the Go original does, so tests can pair our
//!   services with "Go" on the real broker.
//!
//! Its API is plain Rust ([`Message`], [`Properties`], [`Value`]): the services' tests do not
//! depend on the AMQP client it uses.

mod broker;
mod cleanup;
mod cluster;
mod database;
mod disk;
pub mod go_p9;
mod message;
mod proxy;

pub use broker::{Broker, amqp_url};
pub use cleanup::Cleanup;
pub use cluster::{Cluster, ClusterError};
pub use database::{TestDatabase, postgres_url};
pub use disk::SmallDisk;
pub use go_p9::{GoAccountService, GoBusListener, GoP9Error, GoVipService};
pub use message::{Headers, Message, Properties, Value};
pub use proxy::TcpProxy;

/// A name no other test uses: `{prefix}.{uuid}`.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}.{}", uuid::Uuid::new_v4().simple())
}
