//! Assembly: the offer database, its writer, the claim ledger, the `vip_queue` consumer and the
//! routes, from the settings the bootstrap loaded.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use common::bootstrap::{Service, ServiceSettings, metrics_handle};
use common::config::Refreshable;
use common::messaging::{QueueSpec, StreamOffset, Subscription};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tracing::{info, warn};

use crate::consumer::OfferConsumer;
use crate::error::StartupError;
use crate::ledger::{self, Announcer, LedgerReader};
use crate::offers::{DEFAULT_MAX_BATCH, OfferDb, OfferWriter};
use crate::routes::{AppState, router};
use crate::settings::VipSettings;

/// The consumers' names on the broker, shown in its management UI.
const CONSUMER_NAME: &str = "vipservice";
const LEDGER_READER_NAME: &str = "vipservice-ledger";
/// How long stopping waits for the ledger to order the last claims.
const LEDGER_GRACE: Duration = Duration::from_secs(5);

/// vipservice, started and consuming.
pub struct App {
    db: Arc<OfferDb>,
    writer: Arc<OfferWriter>,
    consumer: Subscription,
    ledger: Subscription,
    rule_follower: JoinHandle<()>,
}

impl App {
    /// Opens the store, starts the writer, follows rule refreshes and subscribes to the queue.
    pub async fn start(service: &Service<VipSettings>) -> Result<Self, StartupError> {
        let settings = service.settings().current().settings.clone();
        let db = Arc::new(open_store(&settings.own.store.path)?);
        let writer = OfferWriter::start(db.clone(), settings.own.offer.rule(), DEFAULT_MAX_BATCH)
            .map_err(StartupError::Writer)?;
        let writer = Arc::new(writer);
        let rule_follower = tokio::spawn(follow_rule(
            service.settings(),
            service.refreshed(),
            writer.clone(),
        ));
        // Counting starts with the first delivery, before `serve` would install the recorder.
        metrics_handle();
        let messaging = service.messaging();
        // The ledger first: it resumes where this store left it, before any new claim.
        let stream = ledger::stream_for(&settings.own.vip_queue);
        let from = db
            .ledger_next_offset()?
            .map_or(StreamOffset::First, StreamOffset::At);
        let reader = Arc::new(LedgerReader::new(writer.clone()));
        let ledger = messaging
            .subscribe_to_stream(&stream, from, LEDGER_READER_NAME, reader)
            .await?;
        let announcer = Announcer::start(messaging.clone(), stream, db.replica().to_owned());
        let pending = db.pending_claims()?;
        if !pending.is_empty() {
            info!(
                claims = pending.len(),
                "announcing the claims a previous run left pending"
            );
        }
        announcer.announce_later(pending);
        let queue = QueueSpec::work_queue(&settings.own.vip_queue, settings.core.amqp.queue_type);
        let handler = Arc::new(OfferConsumer::new(writer.clone(), Arc::new(announcer)));
        let consumer = messaging
            .subscribe_to_queue(&queue, CONSUMER_NAME, handler)
            .await?;
        info!(queue = consumer.queue(), ledger = ledger.queue(), replica = db.replica(), store = %db.path().display(), "consuming VIP notifications");
        Ok(Self {
            db,
            writer,
            consumer,
            ledger,
            rule_follower,
        })
    }

    pub fn routes(&self) -> Router {
        router(AppState {
            db: self.db.clone(),
            consumer: self.consumer.clone(),
            ledger: self.ledger.clone(),
        })
    }

    /// Stops taking notifications, lets the handlers holding some finish (committed, announced
    /// and acked), then waits a bounded time for the ledger to order this replica's claims, so
    /// that its offers are in the store when it stops rather than at its next start.
    pub async fn stop_consuming(&self) {
        self.consumer.stop().await;
        let mut pending = self.writer.pending();
        let settled = timeout(LEDGER_GRACE, pending.wait_for(|claims| *claims == 0))
            .await
            .is_ok_and(|waited| waited.is_ok());
        if !settled {
            warn!(
                claims = *pending.borrow(),
                "stopping with claims the ledger has not ordered; the next start settles them"
            );
        }
    }

    /// Stops the writer once messaging is closed (no handler can record any more).
    pub async fn close(self) {
        self.rule_follower.abort();
        let _ = self.rule_follower.await;
        match Arc::into_inner(self.writer) {
            Some(writer) => writer.close().await,
            // Nothing is waiting on it: it stops by itself when the last holder drops it.
            None => warn!("the offer writer is still shared; leaving it to stop by itself"),
        }
    }
}

fn open_store(path: &Path) -> Result<OfferDb, StartupError> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|source| StartupError::StoreFolder {
            path: folder.to_owned(),
            source,
        })?;
    }
    Ok(OfferDb::open(path)?)
}

/// Hands every refreshed business rule to the writer.
async fn follow_rule(
    settings: Arc<Refreshable<ServiceSettings<VipSettings>>>,
    mut refreshed: watch::Receiver<u64>,
    writer: Arc<OfferWriter>,
) {
    while refreshed.changed().await.is_ok() {
        let rule = settings.current().settings.own.offer.rule();
        if rule != writer.rule() {
            info!(text = %rule.text, min_interval = ?rule.min_interval, "applying a new offer rule");
            writer.set_rule(rule);
        }
    }
}
