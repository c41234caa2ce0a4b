//! Stand-ins for the unmodified Go services of `callistaenterprise/goblog` P9, speaking AMQP
//! exactly as they do, so that our services' tests can pair with "Go" on the real broker.
//!
//! The wire behaviour reproduced here is described, with citations of the Go source, in
//! `test-support/GO_P9.md`; each item below names what it stands in for:
//!
//! - [`GoAccountService`]: accountservice's `PublishOnQueue` of a VIP notification: a channel of
//!   its own per message, a non-durable classic queue declare, a transient publish whose only
//!   property is the content type, no confirms.
//! - [`GoVipService`]: vipservice's `SubscribeToQueue`: the same declare, no Qos, an auto-ack
//!   consumer tagged `vipservice`. [`GoVipConsumer`] is the same subscription for a process
//!   that runs for hours: it hands each delivery over instead of keeping it (the
//!   `go-p9-vipservice` binary of `tools/`, an image for the Swarm walkthrough).
//! - [`GoBusListener`]: either service's subscription to the Spring Cloud Bus: a durable topic
//!   exchange, a server-named queue bound with the exchange's name as the key, and Go's
//!   substring test deciding which events reload the configuration.
//! - [`publish_refresh`] and [`publish_bus_event`]: what Spring Cloud Config (or an operator)
//!   puts on that exchange, so a test can check that a Go-style refresh reaches our services.
//!
//! Every name is a parameter, so that tests use names of their own ([`crate::unique`]); the Go
//! defaults are [`VIP_QUEUE`], [`CONFIG_EVENT_BUS`] and [`VIP_CONSUMER_TAG`].
//!
//! Unlike Go, the stand-ins return the errors Go ignores or panics on (a test wants to see that
//! Go's declare was refused), and they never reconnect, as Go does not.

mod account;
mod bus;
mod event;
mod inbox;
mod spring;
mod vip;

use lapin::protocol::constants::REPLY_SUCCESS;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind, options::QueueDeclareOptions};

pub use account::{GoAccountService, go_time_string, vip_notification};
pub use bus::{BusMessage, GoBusListener};
pub use event::BusEvent;
pub use spring::{publish_bus_event, publish_refresh};
pub use vip::{GoVipConsumer, GoVipService};

/// The queue Go's accountservice publishes VIP notifications to and vipservice consumes.
pub const VIP_QUEUE: &str = "vip_queue";
/// The Spring Cloud Bus exchange (`config_event_bus` in the Go services' configuration).
pub const CONFIG_EVENT_BUS: &str = "springCloudBus";
/// The consumer tag of Go's vipservice, on `vip_queue` and on the bus (it is its app name).
pub const VIP_CONSUMER_TAG: &str = "vipservice";
/// The app name, and so the bus consumer tag, of Go's accountservice.
pub const ACCOUNT_APP_NAME: &str = "accountservice";

/// streadway/amqp's `Dial` heartbeat, in seconds.
const GO_HEARTBEAT_SECS: u16 = 10;

/// What the broker (or the connection to it) did to a stand-in's request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoP9Error {
    /// The broker refused `step` and closed the channel (or the connection), e.g. with 406
    /// PRECONDITION_FAILED for a declare that does not match what exists. Displayed the way
    /// streadway/amqp prints an `*amqp.Error`.
    #[error("{step}: Exception ({code}) Reason: {text:?}")]
    Refused {
        /// The AMQP method, e.g. `queue.declare`.
        step: &'static str,
        /// The broker's reply code.
        code: u16,
        /// The broker's reply text, e.g. `PRECONDITION_FAILED - inequivalent arg 'durable' ...`.
        text: String,
    },
    /// `step` failed without a word from the broker: no connection, a closed channel, I/O.
    #[error("{step} failed: {message}")]
    Failed { step: &'static str, message: String },
}

impl GoP9Error {
    /// The broker's reply code, if the broker refused.
    pub fn reply_code(&self) -> Option<u16> {
        match self {
            Self::Refused { code, .. } => Some(*code),
            Self::Failed { .. } => None,
        }
    }

    /// Whether the broker refused with 406 PRECONDITION_FAILED (an inequivalent declare).
    pub fn is_precondition_failed(&self) -> bool {
        self.reply_code() == Some(406)
    }

    /// A closure for `map_err`, naming the AMQP method that failed.
    fn at(step: &'static str) -> impl FnOnce(lapin::Error) -> Self {
        move |error| match error.kind() {
            ErrorKind::ProtocolError(amqp) => Self::Refused {
                step,
                code: amqp.get_id(),
                text: amqp.get_message().as_str().to_owned(),
            },
            _ => Self::Failed {
                step,
                message: error.to_string(),
            },
        }
    }
}

/// One connection as streadway's `amqp.Dial` opens it: heartbeat 10 s (unless the URL says
/// otherwise) and streadway's product and version. The capabilities are lapin's. Go dials
/// `amqp_server_url + "/"`, so its config's `amqp://guest:guest@rabbitmq:5672/` reaches vhost
/// `/`: an empty vhost is `/` here too (lapin would ask the broker for vhost `""`); any other
/// vhost is used as given.
async fn connect(amqp_url: &str) -> Result<Connection, GoP9Error> {
    let mut uri: AMQPUri = amqp_url.parse().map_err(|message| GoP9Error::Failed {
        step: "connect",
        message,
    })?;
    if uri.vhost.is_empty() {
        uri.vhost = "/".to_owned();
    }
    uri.query.heartbeat.get_or_insert(GO_HEARTBEAT_SECS);
    let properties = ConnectionProperties::default()
        .with_client_property("product".into(), "https://github.com/streadway/amqp".into())
        .with_client_property("version".into(), "β".into());
    Connection::connect_uri(uri, properties)
        .await
        .map_err(GoP9Error::at("connect"))
}

/// A new channel on `connection`, as Go's `conn.Channel()`.
async fn open_channel(connection: &Connection) -> Result<Channel, GoP9Error> {
    connection
        .create_channel()
        .await
        .map_err(GoP9Error::at("channel.open"))
}

/// Declares `queue` as both Go services do (`QueueDeclare(name, false, false, false, false,
/// nil)`): not passive, not durable, not auto-delete, not exclusive, no arguments. Returns the
/// name the broker confirmed (the server's name when `queue` is empty). A refusal closes the
/// channel.
async fn declare_go_queue(channel: &Channel, queue: &str) -> Result<String, GoP9Error> {
    let declared = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            Default::default(),
        )
        .await
        .map_err(GoP9Error::at("queue.declare"))?;
    Ok(declared.name().as_str().to_owned())
}

/// Closes a connection the way a stand-in's `close()` does; a Go process that exits or panics
/// just drops its socket, which the broker treats the same for everything the stand-ins declare.
async fn close_connection(connection: &Connection) -> Result<(), GoP9Error> {
    connection
        .close(REPLY_SUCCESS, "".into())
        .await
        .map_err(GoP9Error::at("connection.close"))
}
