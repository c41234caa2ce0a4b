//! The connection's state as the services' `/health` and logs see it.

use std::fmt;

/// Where the client's connection to the broker stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkStatus {
    /// The first connection is being made.
    Connecting,
    Connected,
    /// The connection was lost; publishes wait (bounded) and consumers resume once it is back.
    Reconnecting,
    /// The broker raised a resource alarm and does not accept publishes for now.
    Blocked(String),
    Closed,
}

impl LinkStatus {
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected)
    }
}

impl fmt::Display for LinkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connecting => f.write_str("connecting"),
            Self::Connected => f.write_str("connected"),
            Self::Reconnecting => f.write_str("reconnecting"),
            Self::Blocked(reason) => write!(f, "blocked by the broker: {reason}"),
            Self::Closed => f.write_str("closed"),
        }
    }
}
