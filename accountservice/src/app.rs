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
use common::database::DatabaseError;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::notifier::OutboxNotifier;
use crate::outbox::db::Changes;
use crate::outbox::{OutboxDb, OutboxWriter, Relay, describe_metrics};
use crate::quotes::{QuotesClient, QuotesError, QuotesSettings};
use crate::routes::{AppState, router};
use crate::settings::AccountSettings;
use crate::store::{RedbAccountStore, StoreError};

/// Committed batches waiting for the relay; past this, new entries are written due and the
/// relay claims them from the table.
const FRESH_BATCHES: usize = 64;

/// Why the service could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// The store could not be opened where `store.path` says.
    #[error("the account store could not be opened: check the setting `store.path`")]
    OpenStore(#[source] StoreError),
    /// The outbox database refused (a database that is away is waited for).
    #[error("the outbox database could not be opened")]
    OpenOutbox(#[source] DatabaseError),
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
    outbox: Arc<OutboxDb>,
    writer: Arc<OutboxWriter>,
    stop_relay: CancellationToken,
    relay: JoinHandle<()>,
}

impl Application {
    /// Starts the bootstrap (settings, logging, broker, bus) and, while it subscribes to the
    /// bus, opens the store and the outbox and starts the outbox's writer and relay.
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

    /// Serves until `shutdown` resolves, then: in-flight requests finish (their notifications
    /// committed), the relay gets a bounded wait for the publishes under way and leaves the
    /// rest in the outbox, the writer applies what it holds, the broker connection closes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AppError> {
        let Self { mut service, own } = self;
        let Own {
            state,
            outbox,
            writer,
            stop_relay,
            relay,
        } = own;
        let served = service.serve(router(state), shutdown).await;
        stop_relay.cancel();
        if let Err(error) = relay.await {
            tracing::error!(%error, "the outbox relay failed");
        }
        match Arc::into_inner(writer) {
            Some(writer) => writer.close().await,
            None => {
                tracing::warn!("the outbox writer is still shared; leaving it to stop by itself")
            }
        }
        // Every notification answered 200 is in the outbox: a failing close loses nothing.
        if let Err(error) = service.close().await {
            tracing::warn!(%error, "the broker connection did not close cleanly");
        }
        outbox.close().await;
        Ok(served?)
    }
}

impl Own {
    /// Opens the store and the outbox, and starts the outbox's writer and relay.
    async fn start(service: &Service<AccountSettings>) -> Result<Self, AppError> {
        let settings = service.settings();
        let current = settings.current();
        let own = &current.settings.own;
        let path = own.store.path.clone();
        let store = blocking(move || RedbAccountStore::open(path))
            .await
            .map_err(AppError::OpenStore)?;
        let store = Arc::new(store);
        let outbox = OutboxDb::connect_when_available(&own.outbox)
            .await
            .map_err(AppError::OpenOutbox)?;
        let outbox = Arc::new(outbox);
        let owner: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
        move_legacy_outbox(&store, &outbox, &owner).await?;
        // The recorder is installed on first use; metrics recorded before it would be lost.
        if metrics_handle().is_some() {
            describe_metrics();
        }
        let notifications = own.notifications.clone();
        let (fresh, fresh_batches) = mpsc::channel(FRESH_BATCHES);
        let due = Arc::new(Notify::new());
        let writer = Arc::new(OutboxWriter::start(
            outbox.clone(),
            owner.clone(),
            notifications.lease(),
            fresh,
            due.clone(),
        ));
        let relay = Relay {
            messaging: service.messaging(),
            db: outbox.clone(),
            settler: writer.settler(),
            queue: current.settings.core.amqp.work_queue(&own.vip_queue),
            owner,
            lease: notifications.lease(),
            publish_timeout: notifications.publish_timeout(),
            max_in_flight: notifications.max_in_flight,
            fresh: fresh_batches,
            due,
        };
        tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.keep_checkpointing().await }
        });
        let stop_relay = CancellationToken::new();
        let relay = tokio::spawn(relay.run(stop_relay.clone(), notifications.shutdown_grace()));
        let quotes = Arc::new(ArcSwap::from_pointee(QuotesClient::new(&own.quotes)?));
        tokio::spawn(follow_quotes(
            settings.clone(),
            service.refreshed(),
            quotes.clone(),
        ));
        let state = AppState {
            accounts: store,
            outbox: Some(outbox.clone()),
            outbox_down: writer.down(),
            quotes,
            notifier: Arc::new(OutboxNotifier {
                writer: writer.clone(),
            }),
            is_vip: vip_policy(settings),
            broker: service.messaging().status(),
            served_by: served_by().to_string().into(),
            healthy: Arc::new(AtomicBool::new(true)),
        };
        Ok(Self {
            state,
            outbox,
            writer,
            stop_relay,
            relay,
        })
    }
}

/// Moves what an earlier version left in the redb file's outbox into the outbox database (due
/// at once), then deletes it there.
async fn move_legacy_outbox(
    store: &Arc<RedbAccountStore>,
    outbox: &OutboxDb,
    owner: &str,
) -> Result<(), AppError> {
    let reading = Arc::clone(store);
    let legacy = blocking(move || reading.legacy_outbox())
        .await
        .map_err(AppError::OpenStore)?;
    if legacy.is_empty() {
        return Ok(());
    }
    let changes = Changes {
        appended: &legacy,
        ..Changes::default()
    };
    outbox
        .apply(owner, &changes, chrono::Utc::now())
        .await
        .map_err(AppError::OpenOutbox)?;
    let dropping = Arc::clone(store);
    blocking(move || dropping.drop_legacy_outbox())
        .await
        .map_err(AppError::OpenStore)?;
    tracing::info!(
        count = legacy.len(),
        database = outbox.url(),
        "moved the notifications an earlier version left in the store's outbox"
    );
    Ok(())
}

/// Runs a blocking store call (redb waits for an fsync) off the async workers; a panic in it
/// is raised again here (the runtime never cancels blocking tasks).
async fn blocking<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or_else(|join_error| std::panic::resume_unwind(join_error.into_panic()))
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
