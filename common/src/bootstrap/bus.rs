//! Spring Cloud Bus for a service: refresh events reload its settings, environment changes
//! set keys, and each handled event is acknowledged on the bus as Spring services do.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::logging;
use super::redacted::redacted_json;
use super::settings::ServiceSettings;
use crate::config::{BusEvent, BusId, Changes, Refreshable, Settings, SettingsLoader};
use crate::messaging::{
    ExchangeSpec, Handler, HandlerError, IncomingMessage, Messaging, OutgoingMessage,
};

/// Handles the messages of this instance's bus queue.
pub(super) struct BusListener<X> {
    pub(super) loader: SettingsLoader,
    pub(super) settings: Arc<Refreshable<ServiceSettings<X>>>,
    pub(super) bus_id: BusId,
    pub(super) exchange: ExchangeSpec,
    pub(super) messaging: Arc<dyn Messaging>,
    /// Bumped after every applied change, for parts of the service that cache settings.
    pub(super) refreshed: watch::Sender<u64>,
}

#[async_trait]
impl<X: Settings + Clone> Handler for BusListener<X> {
    async fn handle(&self, message: IncomingMessage) -> Result<(), HandlerError> {
        let event = match BusEvent::parse(&message.body) {
            Ok(event) => event,
            Err(error) => {
                warn!(%error, body = %message.body_preview(), "dropping a bus message that is no event");
                return Ok(());
            }
        };
        let Some(header) = event.header() else {
            debug!(
                ?event,
                "ignoring a bus event of a type this service does not handle"
            );
            return Ok(());
        };
        if matches!(event, BusEvent::Ack(_)) || !header.is_for(&self.bus_id) {
            debug!(id = %header.id, destination = ?header.destination_service, "bus event not for this instance");
            return Ok(());
        }
        info!(id = %header.id, origin = ?header.origin_service, destination = ?header.destination_service, "bus event for this instance");
        self.apply(&event).await;
        if let Some(ack) = event.ack(&self.bus_id) {
            self.publish_ack(&ack).await;
        }
        Ok(())
    }
}

impl<X: Settings + Clone> BusListener<X> {
    #[tracing::instrument(name = "bus refresh", skip_all, fields(id = %event.header().map_or("", |h| h.id.as_str())))]
    async fn apply(&self, event: &BusEvent) {
        let current = self.settings.current();
        let next = match event {
            BusEvent::Refresh(_) => self.loader.reload(&current).await,
            BusEvent::EnvironmentChange { values, .. } => {
                self.loader.apply_changes(&current, values.clone())
            }
            BusEvent::Ack(_) | BusEvent::Unknown { .. } => return,
        };
        match next {
            Ok(next) => {
                for unknown in next.unknown_since(&current) {
                    warn!("{unknown}");
                }
                let level = next.settings.core.log_level.clone();
                let changes = self.settings.replace(next);
                logging::set_level(&level);
                report(&changes, &self.settings.current().settings);
                self.refreshed.send_modify(|generation| *generation += 1);
            }
            Err(error) => error!(%error, "refresh failed; keeping the current settings"),
        }
    }

    async fn publish_ack<T: serde::Serialize>(&self, ack: &T) {
        let message = match OutgoingMessage::json("AckRemoteApplicationEvent", ack) {
            Ok(message) => message,
            Err(error) => return warn!(%error, "could not encode the bus ack"),
        };
        if let Err(error) = self
            .messaging
            .publish(&self.exchange, &self.exchange.name, message)
            .await
        {
            warn!(%error, "could not acknowledge the bus event");
        }
    }
}

fn report<X: Settings>(changes: &Changes, settings: &ServiceSettings<X>) {
    if changes.is_empty() {
        info!("settings reloaded; nothing changed");
        return;
    }
    if !changes.applied.is_empty() {
        info!(keys = ?changes.applied, settings = %redacted_json(settings), "settings reloaded and applied");
    }
    if !changes.needs_restart.is_empty() {
        warn!(keys = ?changes.needs_restart, "these settings changed but take effect only after a restart");
    }
}
