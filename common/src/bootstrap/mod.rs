//! What both services do around their own work, written once: read flags, load settings,
//! set up logging, connect to the broker, follow the config bus, serve HTTP until SIGTERM,
//! and close the connection cleanly.
//!
//! A service's `Application::build` starts it with its own start running beside the bus
//! subscription, and its `run_until_stopped` serves and then closes:
//!
//! ```no_run
//! # use common::bootstrap::{BootstrapError, Launch, Service, shutdown_signal};
//! # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct Own;
//! # impl common::config::Settings for Own {}
//! # async fn run() -> Result<(), BootstrapError> {
//! let launch = Launch::from_command_line("vipservice", "0.1.0");
//! let (mut service, routes) = Service::<Own>::start_with(launch, async |_service| {
//!     // the service's own start: stores, consumers, the routes and their state
//!     Ok::<_, BootstrapError>(axum::Router::new())
//! })
//! .await?;
//! service.serve(routes, shutdown_signal()).await?;
//! service.close().await
//! # }
//! ```

mod bus;
mod http;
mod info;
mod logging;
mod redacted;
mod runtime;
mod server;
mod settings;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use self::bus::BusListener;
pub use self::http::{metrics_handle, served_by, shutdown_signal};
use self::info::Info;
pub use self::redacted::redacted_json;
pub use self::runtime::{MAX_BLOCKING_THREADS, runtime};
pub use self::server::{HttpTuning, serve};
pub use self::settings::{AmqpTuning, CoreSettings, ServiceSettings};
use crate::config::{
    BusId, ConfigArgs, ConfigError, EnvVars, Refreshable, Settings, SettingsLoader, Snapshot,
    normalize_go_flags,
};
use crate::messaging::Compat;
use crate::messaging::{AmqpMessaging, ExchangeSpec, Messaging, MessagingError};

/// Why a service could not start or stop cleanly; each names the setting to check.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The broker of `amqp_server_url` could not be reached or refused the connection.
    #[error("cannot connect to the broker: {hint}")]
    Connect {
        hint: &'static str,
        #[source]
        source: MessagingError,
    },
    /// The config bus exchange could not be declared or subscribed to.
    #[error(
        "cannot follow the config bus on exchange {exchange:?}: check the setting \
         `config_event_bus` (a topic exchange)"
    )]
    Bus {
        exchange: String,
        #[source]
        source: MessagingError,
    },
    #[error(transparent)]
    Messaging(#[from] MessagingError),
    #[error(
        "cannot listen on {address}: check the setting `server_port` (is another process \
         listening on it?)"
    )]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

impl BootstrapError {
    fn connect(source: MessagingError) -> Self {
        let hint = match source {
            MessagingError::Authentication { .. } => {
                "check the user and password in the setting `amqp_server_url` (or the file \
                 `amqp.password_file` names)"
            }
            MessagingError::PasswordFile { .. } => "check the setting `amqp.password_file`",
            MessagingError::UnknownVhost { .. } => {
                "check the virtual host in the setting `amqp_server_url`"
            }
            MessagingError::ConnectTimeout { .. } => {
                "check that the broker runs and the setting `amqp_server_url` \
                 (startup waits `amqp.connect_timeout_ms`)"
            }
            _ => "check the setting `amqp_server_url`",
        };
        Self::Connect { hint, source }
    }
}

/// Who is starting and with which configuration: from the command line in production, built
/// by hand in tests.
#[derive(Debug, Clone)]
pub struct Launch {
    pub application: &'static str,
    pub version: &'static str,
    pub config: ConfigArgs,
    pub env: EnvVars,
}

#[derive(Parser)]
#[command(about = "A goblog-rs service")]
struct CommandLine {
    #[command(flatten)]
    config: ConfigArgs,
}

impl Launch {
    /// Flags (the Go original's spellings too) and `GOBLOG_*` variables of this process.
    pub fn from_command_line(application: &'static str, version: &'static str) -> Self {
        let args = normalize_go_flags(std::env::args_os());
        let command_line = CommandLine::parse_from(args);
        Self {
            application,
            version,
            config: command_line.config,
            env: EnvVars::from_process(),
        }
    }
}

/// A started service: settings loaded, broker connected, bus followed, port bound.
pub struct Service<X> {
    application: &'static str,
    settings: Arc<Refreshable<ServiceSettings<X>>>,
    refreshed: watch::Receiver<u64>,
    messaging: AmqpMessaging,
    /// Taken by `serve`.
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    info: Arc<Info>,
}

impl<X: Settings + Clone> Service<X> {
    /// Loads settings, binds the port, connects to the broker and subscribes to the config bus.
    pub async fn start(launch: Launch) -> Result<Self, BootstrapError> {
        let (service, ()) =
            Self::start_with(launch, async |_| Ok::<(), BootstrapError>(())).await?;
        Ok(service)
    }

    /// As [`Service::start`], and runs the service's own start (`own`, given the connected
    /// service) while the config bus subscription is made: each takes a few broker round
    /// trips, and neither needs the other. Returns once both are done; the first error wins.
    pub async fn start_with<A, E>(
        launch: Launch,
        own: impl AsyncFnOnce(&Self) -> Result<A, E>,
    ) -> Result<(Self, A), E>
    where
        E: From<BootstrapError>,
    {
        // The first load logs at info (a config server's failed attempts are seen); then
        // logging follows the settings: their level, and trace export if they ask for it.
        let loader = SettingsLoader::new(&launch.config, launch.application, launch.env.clone())
            .map_err(BootstrapError::from)?;
        let first: Snapshot<ServiceSettings<X>> = logging::while_loading(loader.load_at_startup())
            .await
            .map_err(BootstrapError::from)?;
        let core = &first.settings.core;
        logging::init(
            &core.log_level,
            launch.application,
            launch.version,
            &core.telemetry,
        );
        logging::set_level(&core.log_level);
        for unknown in &first.unknown {
            warn!("{unknown}");
        }
        info!(
            application = launch.application,
            profile = %launch.config.profile,
            source = %first.source.info.description,
            settings = %redacted_json(&first.settings),
            "starting"
        );
        let core = first.settings.core.clone();
        if core.amqp.compat == Compat::GoP9 {
            warn!(
                "amqp.compat is go-p9: work queues are declared as the Go original declares \
                 them, so that its services share them; this gives up their durability (a \
                 broker restart loses the queue and what it holds) and the broker's delivery \
                 limit; poison messages are dead-lettered by the consumer to <queue>.dlq. \
                 Leave the mode once the Go services are gone (README, migration)"
            );
            warn!(
                "amqp.compat is go-p9: RabbitMQ 4.3 and later refuse its non-durable, \
                 non-exclusive queue unless every node sets \
                 `deprecated_features.permit.transient_nonexcl_queues = true` (4.0 to 4.2 \
                 permit it by default)"
            );
        }
        let address = SocketAddr::from(([0, 0, 0, 0], core.server_port));
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| BootstrapError::Bind { address, source })?;
        let local_addr = listener.local_addr().map_err(BootstrapError::Serve)?;
        let port = local_addr.port();
        let bus_id = BusId::new(launch.application, &launch.config.profile, port);
        let messaging = AmqpMessaging::connect(core.messaging(launch.application))
            .await
            .map_err(BootstrapError::connect)?;
        let settings = Arc::new(Refreshable::new(first));
        let (refreshed_tx, refreshed) = watch::channel(0);
        let exchange = ExchangeSpec::topic(&core.config_event_bus);
        let listener_for_bus = BusListener {
            loader,
            settings: settings.clone(),
            bus_id: bus_id.clone(),
            exchange: exchange.clone(),
            messaging: Arc::new(messaging.clone()),
            refreshed: refreshed_tx,
        };
        let follow_bus = async {
            messaging
                .subscribe(&exchange, "#", "anonymous", Arc::new(listener_for_bus))
                .await
                .map_err(|source| {
                    E::from(BootstrapError::Bus {
                        exchange: exchange.name.clone(),
                        source,
                    })
                })
        };
        let service = Self {
            application: launch.application,
            settings,
            refreshed,
            messaging: messaging.clone(),
            listener: Some(listener),
            local_addr,
            info: Arc::new(Info::new(&launch, bus_id)),
        };
        let (bus, own) = tokio::try_join!(follow_bus, own(&service))?;
        info!(
            bus_id = service.info.bus_id(),
            port,
            bus_queue = bus.queue(),
            "started"
        );
        Ok((service, own))
    }

    /// The settings, always the latest snapshot (refreshes swap it atomically).
    pub fn settings(&self) -> Arc<Refreshable<ServiceSettings<X>>> {
        self.settings.clone()
    }

    /// Changes after every applied settings refresh.
    pub fn refreshed(&self) -> watch::Receiver<u64> {
        self.refreshed.clone()
    }

    pub fn messaging(&self) -> Arc<dyn Messaging> {
        Arc::new(self.messaging.clone())
    }

    pub fn application(&self) -> &'static str {
        self.application
    }

    /// The bound HTTP address (its port is the real one when `server_port` is 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `routes` plus `/info` and `/metrics` until `shutdown` resolves, then lets
    /// in-flight requests finish.
    pub async fn serve(
        &mut self,
        routes: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), BootstrapError> {
        let routes = http::with_metrics(
            routes.merge(info::routes(self.info.clone(), self.settings.clone())),
        );
        let Some(listener) = self.listener.take() else {
            return Err(BootstrapError::Serve(std::io::Error::other(
                "the service is served already",
            )));
        };
        let tuning = self.settings.current().settings.core.http.clone();
        server::serve(listener, routes, &tuning, shutdown)
            .await
            .map_err(BootstrapError::Serve)?;
        info!("HTTP server stopped");
        Ok(())
    }

    /// Stops consuming, lets handlers and publishes finish, and closes the connection.
    pub async fn close(self) -> Result<(), BootstrapError> {
        self.messaging.close().await?;
        crate::telemetry::flush();
        info!(application = self.application, "stopped");
        Ok(())
    }
}
