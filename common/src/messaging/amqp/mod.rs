//! The lapin implementation of [`Messaging`].

mod connect;
mod consume;
mod declare;
mod publish;
mod session;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::Channel;
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use self::connect::Brokers;
use self::consume::{Consumer, Source};
use self::publish::Target;
use self::session::{Declared, Session};
use crate::messaging::{
    ExchangeSpec, Handler, LinkStatus, Messaging, MessagingError, MessagingSettings,
    OutgoingMessage, QueueSpec, Subscription,
};

/// How long `close` waits for the broker to confirm the connection's close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Messaging over one RabbitMQ connection that recovers by itself.
///
/// Cheap to clone; every clone shares the connection.
#[derive(Clone)]
pub struct AmqpMessaging {
    shared: Arc<Shared>,
}

/// State shared by the client, its supervisor, consumers and handler tasks.
struct Shared {
    settings: MessagingSettings,
    brokers: Brokers,
    status: watch::Sender<LinkStatus>,
    /// The live session, `None` while reconnecting.
    session: watch::Sender<Option<Arc<Session>>>,
    /// Cancelled when `close` begins: consumers stop taking deliveries.
    stop_consuming: CancellationToken,
    /// Cancelled when the connection is about to close: the supervisor stops.
    closing: CancellationToken,
    consumers: TaskTracker,
    handlers: TaskTracker,
    publishes: TaskTracker,
}

impl Shared {
    /// Records a state change, logging each change once.
    fn set_status(&self, status: LinkStatus) {
        let changed = self.status.send_if_modified(|current| {
            if *current == status {
                return false;
            }
            *current = status.clone();
            true
        });
        if changed {
            match &status {
                LinkStatus::Connected => {
                    let node = self.session.borrow().as_ref().map(|s| s.node.clone());
                    info!(
                        node = node.as_deref().unwrap_or_default(),
                        "messaging connected"
                    );
                }
                LinkStatus::Closed => info!("messaging closed"),
                other => warn!(url = %self.brokers.redacted, "messaging {other}"),
            }
        }
    }

    /// The live session once there is one; `None` once the client closes.
    async fn live_session(&self) -> Option<Arc<Session>> {
        let mut sessions = self.session.subscribe();
        tokio::select! {
            () = self.closing.cancelled() => None,
            session = sessions.wait_for(Option::is_some) => session.ok().and_then(|s| s.clone()),
        }
    }

    /// A session that accepts publishes (connected and not blocked by an alarm), waiting for
    /// one until `deadline`.
    async fn session_for_publish(&self, deadline: Instant) -> Result<Arc<Session>, MessagingError> {
        // A session found dead by a publish is skipped before the supervisor replaces it.
        let ready = |status: &LinkStatus, session: &Option<Arc<Session>>| {
            session
                .clone()
                .filter(|session| !session.lost.is_cancelled())
                .filter(|_| !matches!(status, LinkStatus::Blocked(_)))
        };
        if let Some(session) = ready(&self.status.borrow(), &self.session.borrow()) {
            return Ok(session);
        }
        let started = Instant::now();
        let mut statuses = self.status.subscribe();
        let mut sessions = self.session.subscribe();
        loop {
            if self.closing.is_cancelled() {
                return Err(MessagingError::Closed);
            }
            if let Some(session) =
                ready(&statuses.borrow_and_update(), &sessions.borrow_and_update())
            {
                return Ok(session);
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    return Err(MessagingError::Unavailable {
                        waited: started.elapsed(),
                        state: self.status.borrow().to_string(),
                    });
                }
                () = self.closing.cancelled() => return Err(MessagingError::Closed),
                _ = statuses.changed() => {}
                _ = sessions.changed() => {}
            }
        }
    }
}

impl AmqpMessaging {
    /// Connects (retrying for up to `connect_timeout`) and starts the supervisor that keeps
    /// the connection alive.
    pub async fn connect(settings: MessagingSettings) -> Result<Self, MessagingError> {
        let brokers = Brokers::parse(settings.url.expose())?;
        let connected = connect::connect_first(&brokers, &settings).await?;
        let session = Session::open(connected)
            .await
            .map_err(|source| MessagingError::Broker {
                operation: "opening the publisher channel".into(),
                source,
            })?;
        let shared = Arc::new(Shared {
            settings,
            brokers,
            status: watch::Sender::new(LinkStatus::Connecting),
            session: watch::Sender::new(Some(session.clone())),
            stop_consuming: CancellationToken::new(),
            closing: CancellationToken::new(),
            consumers: TaskTracker::new(),
            handlers: TaskTracker::new(),
            publishes: TaskTracker::new(),
        });
        shared.set_status(LinkStatus::Connected);
        tokio::spawn(session::watch(shared.clone(), session.clone()));
        tokio::spawn(session::supervise(shared.clone(), session));
        Ok(Self { shared })
    }

    async fn start_consumer(
        &self,
        source: Source,
        consumer_name: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<Subscription, MessagingError> {
        if self.shared.stop_consuming.is_cancelled() {
            return Err(MessagingError::Closed);
        }
        let queue = source.queue().to_owned();
        let (active, active_rx) = watch::channel(false);
        let (ended, ended_rx) = watch::channel(false);
        let stop = self.shared.stop_consuming.child_token();
        let consumer = Consumer {
            source,
            tag: format!("{consumer_name}.{}", uuid::Uuid::new_v4().simple()),
            handler,
            active,
            stop: stop.clone(),
        };
        let (first_tx, first_rx) = oneshot::channel();
        let shared = self.shared.clone();
        self.shared.consumers.spawn(async move {
            consume::run(shared, consumer, first_tx).await;
            ended.send_replace(true);
        });
        first_rx.await.unwrap_or(Err(MessagingError::Closed))?;
        Ok(Subscription::new(queue, active_rx, stop, ended_rx))
    }

    /// Publishes through the default exchange straight to the queue `name`, which
    /// `declare` creates on first use on each connection.
    async fn publish_direct<F, Fut>(
        &self,
        name: &str,
        message: &OutgoingMessage,
        declare: F,
    ) -> Result<(), MessagingError>
    where
        F: Fn(Channel) -> Fut + Copy,
        Fut: Future<Output = Result<(), MessagingError>>,
    {
        let _in_flight = self.shared.publishes.token();
        let target = Target {
            exchange: "",
            routing_key: name,
        };
        publish::publish(&self.shared, target, message, |session| async move {
            session
                .ensure_declared(Declared::Queue, name, declare)
                .await
        })
        .await
    }
}

#[async_trait]
impl Messaging for AmqpMessaging {
    async fn publish(
        &self,
        exchange: &ExchangeSpec,
        routing_key: &str,
        message: OutgoingMessage,
    ) -> Result<(), MessagingError> {
        let _in_flight = self.shared.publishes.token();
        let target = Target {
            exchange: &exchange.name,
            routing_key,
        };
        publish::publish(&self.shared, target, &message, |session| async move {
            session
                .ensure_declared(Declared::Exchange, &exchange.name, |channel| async move {
                    declare::exchange(&channel, exchange).await
                })
                .await
        })
        .await
    }

    async fn publish_on_queue(
        &self,
        queue: &QueueSpec,
        message: OutgoingMessage,
    ) -> Result<(), MessagingError> {
        let delivery_limit = self.shared.settings.delivery_limit;
        self.publish_direct(&queue.name, &message, |channel| async move {
            declare::work_queue(&channel, queue, delivery_limit).await
        })
        .await
    }

    async fn subscribe(
        &self,
        exchange: &ExchangeSpec,
        binding_key: &str,
        consumer_name: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<Subscription, MessagingError> {
        let source = Source::Exchange {
            exchange: exchange.clone(),
            binding_key: binding_key.to_owned(),
            queue: format!(
                "{}.{consumer_name}.{}",
                exchange.name,
                uuid::Uuid::new_v4().simple()
            ),
        };
        self.start_consumer(source, consumer_name, handler).await
    }

    async fn subscribe_to_queue(
        &self,
        queue: &QueueSpec,
        consumer_name: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<Subscription, MessagingError> {
        self.start_consumer(Source::WorkQueue(queue.clone()), consumer_name, handler)
            .await
    }

    fn status(&self) -> watch::Receiver<LinkStatus> {
        self.shared.status.subscribe()
    }

    async fn close(&self) -> Result<(), MessagingError> {
        let shared = &self.shared;
        if shared.stop_consuming.is_cancelled() {
            return Ok(());
        }
        shared.stop_consuming.cancel();
        shared.consumers.close();
        shared.handlers.close();
        shared.publishes.close();
        let grace = shared.settings.close_grace;
        let drained = timeout(grace, async {
            shared.consumers.wait().await;
            shared.handlers.wait().await;
            shared.publishes.wait().await;
        })
        .await;
        if drained.is_err() {
            warn!(
                handlers = shared.handlers.len(),
                publishes = shared.publishes.len(),
                ?grace,
                "closing with work still in flight; unacked messages will be redelivered"
            );
        }
        shared.closing.cancel();
        let session = shared.session.send_replace(None);
        shared.set_status(LinkStatus::Closed);
        if let Some(session) = session.filter(|s| s.is_alive()) {
            session.lost.cancel();
            let closing = session.connection.close(200, "goodbye".into());
            match timeout(CLOSE_TIMEOUT, closing).await {
                Ok(Ok(())) => {}
                // A consumer's channel, dropped as its task ended, may still be closing: lapin
                // then refuses the connection close, which the broker completes anyway when the
                // socket goes. Or the node went away just now, closing it for us. Every handler
                // is done by now, so nothing is lost either way.
                Ok(Err(error))
                    if matches!(
                        error.kind(),
                        lapin::ErrorKind::InvalidChannelState(..)
                            | lapin::ErrorKind::InvalidConnectionState(..)
                            | lapin::ErrorKind::IOError(..)
                    ) =>
                {
                    debug!(%error, "the connection was closing or gone as it closed");
                }
                Ok(Err(source)) => {
                    return Err(MessagingError::Broker {
                        operation: "closing the connection".into(),
                        source,
                    });
                }
                Err(_) => {
                    warn!(timeout = ?CLOSE_TIMEOUT, "the broker did not confirm the close; dropping the connection")
                }
            }
        }
        Ok(())
    }
}
