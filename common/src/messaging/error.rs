//! What can go wrong with messaging, typed so callers can act on it (e.g. put a notification in
//! an outbox when the broker is unavailable) and worded so an operator knows what to fix.

use std::time::Duration;

/// Messaging failures. URLs in these errors always have their password redacted.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error("invalid AMQP URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("the broker at {url} refused the credentials of user {user:?} (ACCESS_REFUSED)")]
    Authentication { url: String, user: String },

    #[error(
        "the broker at {url} has no virtual host {vhost:?} or denies it to the user (NOT_ALLOWED)"
    )]
    UnknownVhost { url: String, vhost: String },

    #[error("cannot read the broker password from {path} (setting `amqp.password_file`): {source}")]
    PasswordFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("could not connect to the broker at {url} within {waited:?}: {last_error}")]
    ConnectTimeout {
        url: String,
        waited: Duration,
        last_error: String,
    },

    #[error("the broker was unavailable for {waited:?} ({state}); the message was not published")]
    Unavailable { waited: Duration, state: String },

    #[error("no confirm from the broker within {timeout:?} for a message to {target}")]
    ConfirmTimeout { target: String, timeout: Duration },

    #[error("the broker could not route a message to {target} (no queue bound): returned")]
    Unroutable { target: String },

    #[error("the broker refused to store a message to {target} (nack)")]
    Nacked { target: String },

    /// `detail` is the broker's word (it names the first argument that differs, with both
    /// values); `hint` what to do about it, when known.
    #[error("{kind} {name:?} exists with other arguments than goblog-rs declares: {detail}{hint}")]
    TopologyMismatch {
        kind: &'static str,
        name: String,
        detail: String,
        hint: String,
    },

    /// RabbitMQ 4 deprecates queues that are neither durable nor exclusive (the Go original's
    /// `vip_queue`), and from 4.3 refuses them by closing the connection unless permitted.
    #[error(
        "the broker refused queue {queue:?}, which is neither durable nor exclusive as the Go \
         original declares it: {detail}; set `deprecated_features.permit.transient_nonexcl_queues \
         = true` in every broker node's rabbitmq.conf while the Go services share the queue, or \
         leave `amqp.compat: go-p9` (README, migration)"
    )]
    TransientQueueRefused { queue: String, detail: String },

    /// The broker's user lacks `permission` (configure, write or read) for this; `detail` is
    /// the broker's word, which names the resource and the user.
    #[error(
        "{operation} was refused: {detail}; grant the user {permission} permission on it \
         (rabbitmqctl set_permissions -p VHOST USER CONFIGURE WRITE READ, each a pattern of the \
         queue and exchange names the user may configure, write to and read from)"
    )]
    PermissionDenied {
        operation: String,
        permission: &'static str,
        detail: String,
    },

    #[error("{operation} failed: {source}")]
    Broker {
        operation: String,
        #[source]
        source: lapin::Error,
    },

    #[error("the messaging client is closed")]
    Closed,
}

impl MessagingError {
    /// A broker error from an operation that needs `permission` (e.g. `"configure"`):
    /// [`MessagingError::PermissionDenied`] if the broker refused access.
    pub(crate) fn needing(
        permission: &'static str,
        operation: impl Into<String>,
        source: lapin::Error,
    ) -> Self {
        let operation = operation.into();
        if let lapin::ErrorKind::ProtocolError(amqp) = source.kind()
            && matches!(
                amqp.kind(),
                lapin::protocol::AMQPErrorKind::Soft(lapin::protocol::AMQPSoftError::ACCESSREFUSED)
            )
        {
            return Self::PermissionDenied {
                operation,
                permission,
                detail: amqp.get_message().to_string(),
            };
        }
        Self::Broker { operation, source }
    }

    /// Adds what to do to a [`MessagingError::TopologyMismatch`]; other errors stay as they are.
    pub(crate) fn with_hint(self, what_to_do: &str) -> Self {
        match self {
            Self::TopologyMismatch {
                kind, name, detail, ..
            } => Self::TopologyMismatch {
                kind,
                name,
                detail,
                hint: format!("; {what_to_do}"),
            },
            other => other,
        }
    }

    /// True when trying again later may succeed (the broker was away, slow or blocked), as
    /// opposed to a mistake that needs a fix.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::ConfirmTimeout { .. } | Self::Broker { .. }
        )
    }
}
