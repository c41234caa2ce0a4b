//! Opening connections: URL validation, one bounded attempt per node, and the retry loops for
//! the first connection (bounded in time) and for reconnections (until the client closes).
//!
//! A cluster is given as a list of its nodes' URLs. lapin takes one URI, so the list is ours:
//! each round tries the nodes in a new random order (as Spring AMQP shuffles its addresses, so
//! that clients spread over the nodes), and the first that answers wins.

use std::str::FromStr;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties, ErrorKind};
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::messaging::{MessagingError, MessagingSettings};
use crate::redact::{redact_url, url_list};

/// Heartbeat used unless the URL asks for another: a peer that went silent (a partition, a
/// blackholed route) is noticed after 2× this, so `/health` says so within about 5 s. Below
/// this, a busy host starving the client for a few seconds would cut healthy connections.
const DEFAULT_HEARTBEAT_SECS: u16 = 2;

/// Largest frame offered to the broker unless the URL asks for another (`?frame_max=`).
/// lapin keeps a send and a receive ring buffer of 32 frames each for the connection's life;
/// at RabbitMQ's default of 128 KiB that is 2 × 4 MiB, resident once the rings have wrapped,
/// about half of an idle service. Our notifications are a few hundred bytes, and a larger
/// body is only split into more frames, so 16 KiB (2 × 512 KiB) changes nothing else.
const DEFAULT_FRAME_MAX: u32 = 16 * 1024;

/// The broker's nodes: one URL, or a cluster's comma-separated list.
pub(super) struct Brokers {
    nodes: Vec<BrokerAddress>,
    /// For logs and errors: the list with every password hidden.
    pub(super) redacted: String,
}

impl Brokers {
    pub(super) fn parse(list: &str) -> Result<Self, MessagingError> {
        let redacted = redact_url(list);
        let entries = url_list(list);
        if let Some(position) = entries.iter().position(|entry| entry.is_empty())
            && entries.len() > 1
        {
            return Err(MessagingError::InvalidUrl {
                url: redacted,
                reason: format!(
                    "entry {} of the comma-separated list is empty",
                    position + 1
                ),
            });
        }
        let nodes = entries
            .into_iter()
            .map(BrokerAddress::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { nodes, redacted })
    }

    /// The nodes in a new random order.
    fn shuffled(&self) -> Vec<&BrokerAddress> {
        let mut nodes: Vec<_> = self.nodes.iter().collect();
        fastrand::shuffle(&mut nodes);
        nodes
    }
}

/// One node's validated address.
#[derive(Clone)]
pub(super) struct BrokerAddress {
    uri: AMQPUri,
    /// For logs and errors: the URL with its password hidden.
    pub(super) redacted: String,
}

impl BrokerAddress {
    pub(super) fn parse(url: &str) -> Result<Self, MessagingError> {
        let redacted = redact_url(url);
        let invalid = |reason: &str| MessagingError::InvalidUrl {
            url: redacted.clone(),
            reason: reason.to_owned(),
        };
        if url.trim().is_empty() {
            return Err(invalid("the URL is empty"));
        }
        if !url.starts_with("amqp://") && !url.starts_with("amqps://") {
            return Err(invalid("it must start with amqp:// or amqps://"));
        }
        let mut uri = AMQPUri::from_str(url).map_err(|reason| invalid(&reason))?;
        if uri.authority.host.is_empty() {
            return Err(invalid("it names no host"));
        }
        if uri.scheme == AMQPScheme::AMQPS && !cfg!(feature = "tls") {
            return Err(invalid(
                "amqps:// needs the `tls` feature of the common crate",
            ));
        }
        // `amqp://host:5672/` (the Go original's and the config-repo's spelling) parses to the
        // empty vhost, which RabbitMQ does not have; the Go client took it as the default "/".
        if uri.vhost.is_empty() {
            uri.vhost = "/".to_owned();
        }
        uri.query.heartbeat.get_or_insert(DEFAULT_HEARTBEAT_SECS);
        uri.query.frame_max.get_or_insert(DEFAULT_FRAME_MAX);
        Ok(Self { uri, redacted })
    }

    fn user(&self) -> &str {
        &self.uri.authority.userinfo.username
    }

    fn vhost(&self) -> &str {
        &self.uri.vhost
    }
}

/// Why one attempt failed: worth retrying, or a mistake to report at once.
enum AttemptError {
    Transient(String),
    Permanent(MessagingError),
}

/// A connection and the node it was made to (its URL, redacted).
pub(super) struct Connected {
    pub(super) connection: Connection,
    pub(super) node: String,
}

/// One round: every node once, in a new random order, until one answers. Wrong credentials or
/// vhost end the round at once (a cluster's users and vhosts are the same on every node); when
/// no node answers, the error names each node and why.
async fn attempt_nodes(
    brokers: &Brokers,
    settings: &MessagingSettings,
) -> Result<Connected, AttemptError> {
    let mut failures = Vec::new();
    for node in brokers.shuffled() {
        match attempt(node, settings).await {
            Ok(connection) => {
                return Ok(Connected {
                    connection,
                    node: node.redacted.clone(),
                });
            }
            Err(AttemptError::Transient(reason)) if brokers.nodes.len() > 1 => {
                debug!(node = %node.redacted, error = %reason, "broker node not reachable");
                failures.push(format!("{}: {reason}", node.redacted));
            }
            Err(error) => return Err(error),
        }
    }
    Err(AttemptError::Transient(failures.join("; ")))
}

/// One connection attempt, TCP and handshake bounded by `attempt_timeout`.
async fn attempt(
    address: &BrokerAddress,
    settings: &MessagingSettings,
) -> Result<Connection, AttemptError> {
    let properties = ConnectionProperties::default()
        .with_connection_name(settings.connection_name.clone().into());
    let mut uri = address.uri.clone();
    if let Some(path) = &settings.password_file {
        let password = std::fs::read_to_string(path).map_err(|source| {
            AttemptError::Permanent(MessagingError::PasswordFile {
                path: path.clone(),
                source,
            })
        })?;
        uri.authority.userinfo.password = password.trim_end_matches(['\r', '\n']).to_owned();
    }
    match timeout(
        settings.attempt_timeout,
        Connection::connect_uri(uri, properties),
    )
    .await
    {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(classify(address, &error)),
        Err(_) => Err(AttemptError::Transient(format!(
            "no answer within {:?}",
            settings.attempt_timeout
        ))),
    }
}

/// Credentials and vhosts do not fix themselves: those fail at once; the rest is retried.
fn classify(address: &BrokerAddress, error: &lapin::Error) -> AttemptError {
    if let ErrorKind::ProtocolError(amqp) = error.kind() {
        match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED) => {
                return AttemptError::Permanent(MessagingError::Authentication {
                    url: address.redacted.clone(),
                    user: address.user().to_owned(),
                });
            }
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => {
                return AttemptError::Permanent(MessagingError::UnknownVhost {
                    url: address.redacted.clone(),
                    vhost: address.vhost().to_owned(),
                });
            }
            _ => {}
        }
    }
    AttemptError::Transient(error.to_string())
}

/// Capped exponential delays with jitter, without end: between reconnections, re-subscriptions
/// and publishes the broker nacked.
pub(super) fn reconnect_delays(settings: &MessagingSettings) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(settings.reconnect_min_delay)
        .with_max_delay(settings.reconnect_max_delay)
        .with_jitter()
        .without_max_times()
        .build()
}

/// The first connection: retried with backoff for up to `connect_timeout`, because a service
/// may start before its broker; wrong credentials or vhost fail at once.
pub(super) async fn connect_first(
    brokers: &Brokers,
    settings: &MessagingSettings,
) -> Result<Connected, MessagingError> {
    let started = Instant::now();
    let deadline = started + settings.connect_timeout;
    let mut delays = reconnect_delays(settings);
    let mut warned = false;
    loop {
        let last_error = match attempt_nodes(brokers, settings).await {
            Ok(connected) => {
                info!(node = %connected.node, "connected to the broker");
                return Ok(connected);
            }
            Err(AttemptError::Permanent(error)) => return Err(error),
            Err(AttemptError::Transient(reason)) => reason,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(MessagingError::ConnectTimeout {
                url: brokers.redacted.clone(),
                waited: now - started,
                last_error,
            });
        }
        if !warned {
            warn!(url = %brokers.redacted, error = %last_error, "broker not reachable yet; retrying");
            warned = true;
        }
        let delay = delays.next().unwrap_or(settings.reconnect_max_delay);
        sleep(delay.min(deadline - now)).await;
    }
}

/// Reconnects after a lost connection, until it succeeds or `closing` is cancelled (`None`).
pub(super) async fn reconnect(
    brokers: &Brokers,
    settings: &MessagingSettings,
    closing: &CancellationToken,
) -> Option<Connected> {
    let mut delays = reconnect_delays(settings);
    let mut attempts = 0u32;
    loop {
        let delay = delays.next().unwrap_or(settings.reconnect_max_delay);
        tokio::select! {
            () = closing.cancelled() => return None,
            () = sleep(delay) => {}
        }
        attempts += 1;
        let result = tokio::select! {
            () = closing.cancelled() => return None,
            result = attempt_nodes(brokers, settings) => result,
        };
        match result {
            Ok(connected) => {
                info!(node = %connected.node, attempts, "reconnected to the broker");
                return Some(connected);
            }
            // Credentials may be rotated while we wait: keep trying, but say why it fails.
            Err(AttemptError::Permanent(error)) if attempts == 1 => {
                warn!(%error, "reconnecting");
            }
            Err(AttemptError::Transient(reason)) if attempts == 1 => {
                warn!(url = %brokers.redacted, error = %reason, "broker not reachable; retrying");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match BrokerAddress::parse(url) {
            Err(MessagingError::InvalidUrl { url, reason }) => format!("{url}: {reason}"),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("{url} should be invalid"),
        }
    }

    #[test]
    fn malformed_urls_are_named_without_their_password() {
        assert!(reason("").contains("empty"));
        assert!(reason("http://guest:pw@host").contains("amqp://"));
        let message = reason("amqp://guest:secret@host:notaport/%2f");
        assert!(message.contains("guest:***@host"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn a_heartbeat_is_set_unless_the_url_has_one() {
        let default = BrokerAddress::parse("amqp://guest:guest@127.0.0.1:5672/%2f").expect("valid");
        assert_eq!(default.uri.query.heartbeat, Some(DEFAULT_HEARTBEAT_SECS));
        let chosen = BrokerAddress::parse("amqp://127.0.0.1/%2f?heartbeat=30").expect("valid");
        assert_eq!(chosen.uri.query.heartbeat, Some(30));
        assert_eq!(default.redacted, "amqp://guest:***@127.0.0.1:5672/%2f");
    }

    #[test]
    fn a_small_frame_max_is_offered_unless_the_url_has_one() {
        let default = BrokerAddress::parse("amqp://127.0.0.1/%2f").expect("valid");
        assert_eq!(default.uri.query.frame_max, Some(DEFAULT_FRAME_MAX));
        let chosen = BrokerAddress::parse("amqp://127.0.0.1/%2f?frame_max=131072").expect("valid");
        assert_eq!(chosen.uri.query.frame_max, Some(131_072));
    }

    #[test]
    fn a_trailing_slash_means_the_default_vhost_as_in_the_go_client() {
        for url in [
            "amqp://guest:guest@rabbitmq:5672/",
            "amqp://rabbitmq",
            "amqp://h/%2f",
        ] {
            let address = BrokerAddress::parse(url).expect("valid");
            assert_eq!(address.vhost(), "/", "{url}");
        }
        let named = BrokerAddress::parse("amqp://h:5672/goblog").expect("valid");
        assert_eq!(named.vhost(), "goblog");
    }

    #[test]
    fn a_list_names_each_node_and_rejects_a_bad_entry() {
        let brokers =
            Brokers::parse("amqp://u:p1@n1:5672/, amqp://u:p2@n2:5673/%2f").expect("a valid list");
        assert_eq!(brokers.nodes.len(), 2);
        assert_eq!(brokers.nodes[1].redacted, "amqp://u:***@n2:5673/%2f");
        assert_eq!(brokers.nodes[1].vhost(), "/");
        assert_eq!(
            brokers.redacted,
            "amqp://u:***@n1:5672/,amqp://u:***@n2:5673/%2f"
        );
        for (list, wanted) in [
            (
                "amqp://u:secret@n1,,amqp://n3",
                "entry 2 of the comma-separated list is empty",
            ),
            (
                "amqp://u:secret@n1,",
                "entry 2 of the comma-separated list is empty",
            ),
            (
                "amqp://u:secret@n1,http://n2",
                "\"http://n2\": it must start with amqp://",
            ),
        ] {
            let Err(error) = Brokers::parse(list) else {
                panic!("{list} should be invalid");
            };
            let message = error.to_string();
            assert!(message.contains(wanted), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
    }

    #[test]
    fn every_order_of_the_nodes_comes_up() {
        let brokers = Brokers::parse("amqp://n1,amqp://n2,amqp://n3").expect("a valid list");
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..200 {
            firsts.insert(brokers.shuffled()[0].redacted.clone());
        }
        assert_eq!(firsts.len(), 3, "{firsts:?}");
    }
}
