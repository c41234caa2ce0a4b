//! `GET /info`, as Spring Boot's actuator info: what runs here and with which configuration.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::Launch;
use super::settings::ServiceSettings;
use crate::config::{BusId, Refreshable, Settings};

/// What does not change while the service runs.
pub(super) struct Info {
    application: &'static str,
    version: &'static str,
    profile: String,
    bus_id: BusId,
}

impl Info {
    pub(super) fn new(launch: &Launch, bus_id: BusId) -> Self {
        Self {
            application: launch.application,
            version: launch.version,
            profile: launch.config.profile.clone(),
            bus_id,
        }
    }

    pub(super) fn bus_id(&self) -> &str {
        self.bus_id.as_str()
    }
}

pub(super) fn routes<X: Settings>(
    info: Arc<Info>,
    settings: Arc<Refreshable<ServiceSettings<X>>>,
) -> axum::Router {
    Router::new().route(
        "/info",
        get(move || {
            let (info, settings) = (info.clone(), settings.clone());
            async move { Json(describe(&info, &settings)) }
        }),
    )
}

fn describe<X: Settings>(info: &Info, settings: &Refreshable<ServiceSettings<X>>) -> Value {
    let snapshot = settings.current();
    let source = &snapshot.source.info;
    json!({
        "application": info.application,
        "build": { "version": info.version },
        "profile": info.profile,
        "config": {
            "source": source.description,
            "version": source.version,
            "propertySources": source.property_sources,
        },
        "server_name": snapshot.settings.core.server_name,
        "busId": info.bus_id.as_str(),
    })
}
