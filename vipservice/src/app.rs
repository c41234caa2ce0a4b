//! Assembles the service from its settings: the shared bootstrap, the offers database, its
//! writer, the `vip_queue` consumer and the routes. `main` starts it from here.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::{TimeDelta, Utc};
use common::bootstrap::{Launch, Service, ServiceSettings, metrics_handle};
use common::config::Refreshable;
use common::messaging::Subscription;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::consumer::OfferConsumer;
use crate::error::StartupError;
use crate::offers::{DEFAULT_MAX_BATCH, OfferDb, OfferWriter};
use crate::routes::{AppState, router};
use crate::settings::VipSettings;

/// The consumer's name on the broker, shown in its management UI.
const CONSUMER_NAME: &str = "vipservice";
/// How often processed message ids past their retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// A started vipservice, consuming, not yet serving.
pub struct Application {
    service: Service<VipSettings>,
    own: Own,
}

impl Application {
    /// Starts the bootstrap (settings, logging, broker, bus) and, while it subscribes to the
    /// bus, connects to the offers database and subscribes to the queue.
    pub async fn build(launch: Launch) -> Result<Self, StartupError> {
        let (service, own) = Service::start_with(launch, Own::start).await?;
        Ok(Self { service, own })
    }

    /// Serves until `shutdown` resolves, then stops consuming and lets in-flight handlers
    /// commit and ack; only then closes messaging, the writer and the database.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let Self { mut service, own } = self;
        let served = service.serve(own.routes(), shutdown).await;
        own.stop_consuming().await;
        let closed = service.close().await;
        own.close().await;
        served?;
        Ok(closed?)
    }
}

/// What vipservice adds to the shared bootstrap.
struct Own {
    db: Arc<OfferDb>,
    writer: Arc<OfferWriter>,
    consumer: Subscription,
    background: Vec<JoinHandle<()>>,
}

impl Own {
    /// Connects to the database (waiting for it while it is away), starts the writer, follows
    /// rule refreshes and subscribes to the queue.
    async fn start(service: &Service<VipSettings>) -> Result<Self, StartupError> {
        let settings = service.settings().current().settings.clone();
        let db = Arc::new(OfferDb::connect_when_available(&settings.own.offers).await?);
        let writer = Arc::new(OfferWriter::start(
            db.clone(),
            settings.own.offer.rule(),
            DEFAULT_MAX_BATCH,
        ));
        let background = vec![
            tokio::spawn(follow_rule(
                service.settings(),
                service.refreshed(),
                writer.clone(),
            )),
            tokio::spawn(prune(
                db.clone(),
                settings.own.processed_messages.retention(),
            )),
            tokio::spawn({
                let db = db.clone();
                async move { db.keep_checkpointing().await }
            }),
        ];
        // Counting starts with the first delivery, before `serve` would install the recorder.
        metrics_handle();
        crate::consumer::describe_metrics();
        let queue = settings.core.amqp.work_queue(&settings.own.vip_queue);
        let handler = Arc::new(OfferConsumer::new(writer.clone()));
        let consumer = service
            .messaging()
            .subscribe_to_queue(&queue, CONSUMER_NAME, handler)
            .await?;
        info!(
            queue = consumer.queue(),
            database = db.url(),
            "consuming VIP notifications"
        );
        Ok(Self {
            db,
            writer,
            consumer,
            background,
        })
    }

    fn routes(&self) -> Router {
        router(AppState {
            db: self.db.clone(),
            database_down: self.writer.database_down(),
            consumer: self.consumer.clone(),
        })
    }

    /// Stops taking notifications and lets the handlers holding some finish (committed and
    /// acked). Those waiting for an absent database give up and are requeued.
    async fn stop_consuming(&self) {
        self.writer.stop_waiting();
        self.consumer.stop().await;
    }

    /// Stops the writer once messaging is closed (no handler can record any more), then
    /// closes the database.
    async fn close(self) {
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
        match Arc::into_inner(self.writer) {
            Some(writer) => writer.close().await,
            // Nothing is waiting on it: it stops by itself when the last holder drops it.
            None => warn!("the offer writer is still shared; leaving it to stop by itself"),
        }
        self.db.close().await;
    }
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

/// Forgets processed message ids older than `retention`, now and every [`PRUNE_EVERY`].
async fn prune(db: Arc<OfferDb>, retention: Duration) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    loop {
        every.tick().await;
        let retention = TimeDelta::from_std(retention).unwrap_or(TimeDelta::MAX);
        let Some(before) = Utc::now().checked_sub_signed(retention) else {
            continue;
        };
        match db.prune_processed(before).await {
            Ok(0) => {}
            Ok(pruned) => {
                info!(pruned, %before, "forgot processed message ids past their retention")
            }
            Err(error) => warn!(error = %error.with_causes(), "cannot prune processed message ids"),
        }
    }
}
