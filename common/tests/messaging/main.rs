//! `common::messaging` against the real RabbitMQ: every test makes its own uniquely named
//! queues and exchanges and records them in a `Cleanup` guard, which deletes them when
//! the test ends, passed or failed.

mod failures;
mod helpers;
mod nodes;
mod recovery;
mod routing;
