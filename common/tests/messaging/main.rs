//! `common::messaging` against the real RabbitMQ: every test makes its own uniquely named
//! queues and exchanges and deletes them.

mod failures;
mod helpers;
mod recovery;
mod routing;
mod streams;
