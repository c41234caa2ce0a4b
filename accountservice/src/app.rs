//! Assembles the service from its settings: the shared bootstrap, the store, the quotes client,
//! the notifier and its relay. `main` and the integration tests both start it from here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use common::bootstrap::{
    BootstrapError, Launch, Service, ServiceSettings, metrics_handle, served_by,
};
use common::config::Refreshable;
use common::messaging::QueueSpec;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::notify::{Notifier, Relay, describe_metrics};
use crate::quotes::{QuotesClient, QuotesError, QuotesSettings};
use crate::routes::{AppState, router};
use crate::settings::{AccountSettings, NotificationSettings};
use crate::store::{RedbAccountStore, StoreError};

/// Why the service could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// The store could not be opened where `store.path` says.
    #[error("the account store could not be opened: check the setting `store.path`")]
    OpenStore(#[source] StoreError),
    #[error(transparent)]
    Quotes(#[from] QuotesError),
}

/// A started accountservice, not yet serving.
pub struct Application {
    service: Service<AccountSettings>,
    own: Own,
}

/// What accountservice adds to the shared bootstrap.
struct Own {
    state: AppState,
    notifications: NotificationSettings,
    stop_relay: CancellationToken,
    relay: JoinHandle<()>,
}

impl Application {
    /// Starts the bootstrap (settings, logging, broker, bus) and, while it subscribes to the
    /// bus, opens the store and starts the outbox relay.
    pub async fn build(launch: Launch) -> Result<Self, AppError> {
        let (service, own) = Service::start_with(launch, Own::start).await?;
        Ok(Self { service, own })
    }

    /// The bound HTTP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.service.local_addr()
    }

    /// Changes after every applied settings refresh.
    pub fn refreshed(&self) -> watch::Receiver<u64> {
        self.service.refreshed()
    }

    /// Serves until `shutdown` resolves, then: in-flight requests finish, in-flight publishes
    /// get a bounded wait and whatever is unconfirmed goes to the outbox, the relay stops and
    /// the broker connection closes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let Self { mut service, own } = self;
        let served = service.serve(router(own.state.clone()), shutdown).await;
        let persisted = own
            .state
            .notifier
            .shut_down(own.notifications.shutdown_grace())
            .await;
        tracing::info!(persisted, "VIP notifications settled");
        own.stop_relay.cancel();
        if let Err(error) = own.relay.await {
            tracing::error!(%error, "the outbox relay failed");
        }
        // Everything unconfirmed is in the outbox by now: a failing close loses nothing.
        if let Err(error) = service.close().await {
            tracing::warn!(%error, "the broker connection did not close cleanly");
        }
        Ok(served?)
    }
}

impl Own {
    /// Opens the store, builds the notifier and starts the relay.
    async fn start(service: &Service<AccountSettings>) -> Result<Self, AppError> {
        let settings = service.settings();
        let current = settings.current();
        let own = &current.settings.own;
        let path = own.store.path.clone();
        let store = tokio::task::spawn_blocking(move || RedbAccountStore::open(path))
            .await
            .unwrap_or_else(|join_error| std::panic::resume_unwind(join_error.into_panic()))
            .map_err(AppError::OpenStore)?;
        let store = Arc::new(store);
        let messaging = service.messaging();
        // The recorder is installed on first use; metrics recorded before it would be lost.
        if metrics_handle().is_some() {
            describe_metrics();
        }
        let queue = QueueSpec::work_queue(&own.vip_queue, current.settings.core.amqp.queue_type);
        let notifier = Notifier::new(
            Arc::clone(&messaging),
            store.clone(),
            queue.clone(),
            own.notifications.max_in_flight,
            own.notifications.publish_timeout(),
        );
        let relay = Relay {
            messaging: Arc::clone(&messaging),
            outbox: store.clone(),
            queue,
            outbox_written: notifier.outbox_written(),
        };
        let stop_relay = CancellationToken::new();
        let relay = tokio::spawn(relay.run(stop_relay.clone()));
        let quotes = Arc::new(ArcSwap::from_pointee(QuotesClient::new(&own.quotes)?));
        tokio::spawn(follow_quotes(
            settings.clone(),
            service.refreshed(),
            quotes.clone(),
        ));
        let state = AppState {
            accounts: store.clone(),
            outbox: store,
            quotes,
            notifier: Arc::new(notifier),
            is_vip: vip_policy(settings),
            broker: messaging.status(),
            served_by: served_by().to_string().into(),
            healthy: Arc::new(AtomicBool::new(true)),
        };
        Ok(Self {
            notifications: own.notifications.clone(),
            state,
            stop_relay,
            relay,
        })
    }
}

/// VIP ids are read from the settings current at each request, so a refresh applies at once.
fn vip_policy(
    settings: Arc<Refreshable<ServiceSettings<AccountSettings>>>,
) -> crate::routes::VipPolicy {
    Arc::new(move |account_id| settings.current().settings.own.is_vip(account_id))
}

/// Rebuilds the quotes client when a refresh changes `quotes.*` (URL, timeout, breaker); a
/// setting the client refuses is logged and the previous client kept.
async fn follow_quotes(
    settings: Arc<Refreshable<ServiceSettings<AccountSettings>>>,
    mut refreshed: watch::Receiver<u64>,
    quotes: Arc<ArcSwap<QuotesClient>>,
) {
    let mut applied: QuotesSettings = settings.current().settings.own.quotes.clone();
    while refreshed.changed().await.is_ok() {
        let wanted = settings.current().settings.own.quotes.clone();
        if wanted == applied {
            continue;
        }
        match QuotesClient::new(&wanted) {
            Ok(client) => {
                tracing::info!(url = %wanted.url, timeout_ms = wanted.timeout_ms, "quotes client replaced");
                quotes.store(Arc::new(client));
                applied = wanted;
            }
            Err(error) => tracing::warn!(%error, "keeping the previous quotes client"),
        }
    }
}
