//! Settings the way the Go original loaded them, without its sharp edges: from a Spring Cloud
//! Config server (all property sources merged) or a local folder in Spring's native layout,
//! layered with environment variables, typed and validated, kept behind an atomically swapped
//! snapshot, and reloaded when Spring Cloud Bus says so.
//!
//! - [`args`]: the flags that choose the source, Go spellings included.
//! - [`source`]: the config source, server or folder, and what it loaded.
//! - [`spring_cloud`]: the config server client, with timeouts and startup retries.
//! - [`local_repo`]: the local folder.
//! - [`properties`]: Spring's flattened keys and how sources stack.
//! - [`settings`]: typed settings from layers; the environment variable scheme.
//! - [`loader`]: snapshots at startup, on refresh and on environment change.
//! - [`refresh`]: the swapped snapshot and what a reload changed.
//! - [`unknown`]: keys a source sets that no settings type reads, and the nearest known key.
//! - [`bus`]: Spring Cloud Bus events and destination matching.

mod ant_path;
pub mod args;
pub mod bus;
mod error;
pub mod loader;
pub mod local_repo;
pub mod properties;
pub mod refresh;
pub mod settings;
pub mod source;
pub mod spring_cloud;
pub mod unknown;

pub use args::{ConfigArgs, normalize_go_flags};
pub use bus::{AckEvent, BusEvent, BusId, EventHeader, RefreshEvent, destination_matches};
pub use error::ConfigError;
pub use loader::SettingsLoader;
pub use local_repo::LocalRepo;
pub use properties::{Properties, PropertySource};
pub use refresh::{Changes, Refreshable, Snapshot, changes};
pub use settings::{EnvVars, InvalidSetting, Settings, build_settings};
pub use source::{ConfigSource, LoadedSource, SourceInfo};
pub use spring_cloud::{RetryPolicy, ServerEnvironment, SpringCloudConfig};
pub use unknown::{SourceKeys, UnknownSetting};
