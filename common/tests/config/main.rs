//! Integration tests of `common::config`: the config server client against a mock server
//! serving captured responses, the local folder, the settings layers, unknown keys and the bus
//! events.

mod bus;
mod helpers;
mod local_repo;
mod settings;
mod spring_cloud;
mod unknown;
