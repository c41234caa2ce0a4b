//! One live connection with its publisher channel, and the supervisor that replaces it when it
//! is lost.
//!
//! lapin's own auto-recovery can stay stuck in `Reconnecting` for good after a lost connection
//! (9 of 31 broker stop/start runs with lapin 4.12.3 and RabbitMQ 3.10.8), and cannot
//! re-declare exclusive queues, so this layer does the recovery itself: every connection is
//! disposable, and a lost one is dropped and rebuilt from the client's own registry of
//! consumers and declarations.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::ConfirmSelectOptions;
use lapin::protocol::AMQPErrorKind;
use lapin::{Channel, Connection, ErrorKind, Event};
use tokio::sync::Mutex as AsyncMutex;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Shared;
use super::connect::{Connected, reconnect};
use crate::messaging::{LinkStatus, MessagingError};

/// How often the connection's state is checked besides lapin's events, as a safety net.
const STATUS_POLL: Duration = Duration::from_millis(250);

/// How long closing a retired publisher channel may take; it is abandoned either way.
const RETIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a publisher declares on the broker: each name once per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Declared {
    Exchange,
    Queue,
}

/// The names declared so far, looked up by `&str` so a publish allocates nothing to check.
#[derive(Default)]
struct Declarations {
    exchanges: HashSet<String>,
    queues: HashSet<String>,
}

impl Declarations {
    fn of(&mut self, kind: Declared) -> &mut HashSet<String> {
        match kind {
            Declared::Exchange => &mut self.exchanges,
            Declared::Queue => &mut self.queues,
        }
    }
}

pub(super) struct Session {
    pub(super) connection: Connection,
    /// The node this connection is to (its URL, redacted).
    pub(super) node: String,
    publisher: RwLock<Channel>,
    reopening: AsyncMutex<()>,
    declared: Mutex<Declarations>,
    declaring: AsyncMutex<()>,
    /// Cancelled once this connection is known to be dead.
    pub(super) lost: CancellationToken,
}

impl Session {
    pub(super) async fn open(connected: Connected) -> Result<Arc<Self>, lapin::Error> {
        let Connected { connection, node } = connected;
        let publisher = confirm_channel(&connection).await?;
        Ok(Arc::new(Self {
            connection,
            node,
            publisher: RwLock::new(publisher),
            reopening: AsyncMutex::new(()),
            declared: Mutex::default(),
            declaring: AsyncMutex::new(()),
            lost: CancellationToken::new(),
        }))
    }

    pub(super) fn is_alive(&self) -> bool {
        !self.lost.is_cancelled() && self.connection.status().connected()
    }

    /// The long-lived confirm-mode channel; reopened if a channel error closed it while the
    /// connection stayed up.
    pub(super) async fn publisher(&self) -> Result<Channel, lapin::Error> {
        let channel = self.current_publisher();
        if channel.status().connected() {
            return Ok(channel);
        }
        let _reopening = self.reopening.lock().await;
        let channel = self.current_publisher();
        if channel.status().connected() {
            return Ok(channel);
        }
        let fresh = confirm_channel(&self.connection).await?;
        *self
            .publisher
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        // A channel error may mean something we declared was deleted behind our back.
        *self.declared.lock().unwrap_or_else(PoisonError::into_inner) = Declarations::default();
        debug!("publisher channel reopened");
        Ok(fresh)
    }

    /// Closes the publisher channel `channel` if it is still the current one, so the next
    /// publish opens a fresh one (publishes in flight on it fail and are published again).
    pub(super) async fn retire_publisher(&self, channel: &Channel) {
        let _reopening = self.reopening.lock().await;
        if self.current_publisher().id() != channel.id() || !channel.status().connected() {
            return;
        }
        debug!(
            channel = channel.id(),
            "publisher channel retired after a nack"
        );
        if let Ok(Err(error)) =
            tokio::time::timeout(RETIRE_TIMEOUT, channel.close(200, "nacked".into())).await
        {
            debug!(%error, "closing the retired publisher channel failed");
        }
    }

    fn current_publisher(&self) -> Channel {
        self.publisher
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs `declare` once per connection for the `kind` named `name`; concurrent first
    /// publishes wait for the one declaration instead of each opening a channel.
    pub(super) async fn ensure_declared<F, Fut>(
        &self,
        kind: Declared,
        name: &str,
        declare: F,
    ) -> Result<(), MessagingError>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<(), MessagingError>>,
    {
        if self.is_declared(kind, name) {
            return Ok(());
        }
        let _declaring = self.declaring.lock().await;
        if self.is_declared(kind, name) {
            return Ok(());
        }
        // A refused declaration closes its channel: use a throwaway one, not the publisher's.
        let channel =
            self.connection
                .create_channel()
                .await
                .map_err(|source| MessagingError::Broker {
                    operation: "opening a channel to declare topology".into(),
                    source,
                })?;
        let result = declare(channel.clone()).await;
        if channel.status().connected() {
            let _ = channel.close(200, "declared".into()).await;
        }
        result?;
        self.declared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .of(kind)
            .insert(name.to_owned());
        Ok(())
    }

    fn is_declared(&self, kind: Declared, name: &str) -> bool {
        self.declared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .of(kind)
            .contains(name)
    }
}

async fn confirm_channel(connection: &Connection) -> Result<Channel, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

/// Marks the session lost when lapin reports an error or the connection leaves `Connected`,
/// and mirrors broker alarms (connection.blocked) into the client's status.
pub(super) async fn watch(shared: Arc<Shared>, session: Arc<Session>) {
    let mut events = session.connection.events_listener();
    let mut poll = tokio::time::interval(STATUS_POLL);
    loop {
        tokio::select! {
            () = session.lost.cancelled() => return,
            event = events.next() => match event {
                // A channel-level (soft) error closes only that channel; its owner handles it.
                Some(Event::Error(error)) if is_channel_error(&error) => {
                    debug!(%error, "a channel was closed by the broker");
                }
                Some(Event::Error(error)) => {
                    warn!(node = %session.node, %error, "connection to the broker lost");
                    break;
                }
                Some(Event::ConnectionBlocked(reason)) => {
                    shared.set_status(LinkStatus::Blocked(reason));
                }
                Some(Event::ConnectionUnblocked) => shared.set_status(LinkStatus::Connected),
                Some(_) => {}
                None => break,
            },
            _ = poll.tick() => {
                if !session.connection.status().connected() {
                    if !shared.closing.is_cancelled() {
                        warn!(node = %session.node, "connection to the broker lost");
                    }
                    break;
                }
            }
        }
    }
    session.lost.cancel();
}

fn is_channel_error(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(amqp) if matches!(amqp.kind(), AMQPErrorKind::Soft(_)))
}

/// Replaces lost sessions until the client closes.
pub(super) async fn supervise(shared: Arc<Shared>, mut session: Arc<Session>) {
    loop {
        tokio::select! {
            biased;
            () = shared.closing.cancelled() => return,
            () = session.lost.cancelled() => {}
        }
        if shared.closing.is_cancelled() {
            return;
        }
        shared.session.send_replace(None);
        shared.set_status(LinkStatus::Reconnecting);
        session = loop {
            let Some(connected) =
                reconnect(&shared.brokers, &shared.settings, &shared.closing).await
            else {
                return;
            };
            match Session::open(connected).await {
                Ok(fresh) => break fresh,
                Err(error) => {
                    warn!(%error, "reconnected, but opening the publisher channel failed; retrying")
                }
            }
        };
        tokio::spawn(watch(shared.clone(), session.clone()));
        shared.session.send_replace(Some(session.clone()));
        shared.set_status(LinkStatus::Connected);
    }
}
