//! Publishes a Spring Cloud Bus `RefreshRemoteApplicationEvent`, as a config server's
//! `POST /actuator/busrefresh/{destination}` would, so settings can be reloaded without a
//! Spring server:
//!
//!     bus-refresh accountservice:**      # every accountservice instance
//!     bus-refresh                        # every service

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use common::config::RefreshEvent;
use common::messaging::{
    AmqpMessaging, ExchangeSpec, Messaging, MessagingSettings, OutgoingMessage,
};

#[derive(Parser)]
#[command(about = "Ask goblog-rs services to reload their settings through Spring Cloud Bus")]
struct Args {
    /// Which instances: `accountservice:**`, `vipservice:test:**`, …; all when omitted.
    destination: Option<String>,
    /// The broker the services listen on.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// The bus exchange (the services' `config_event_bus`).
    #[arg(long, default_value = "springCloudBus")]
    exchange: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut settings = MessagingSettings::new(&args.amqp_url, "bus-refresh");
    settings.connect_timeout = Duration::from_secs(10);
    let event = RefreshEvent::new("bus-refresh:cli:0", args.destination.as_deref());
    let result = async {
        let messaging = AmqpMessaging::connect(settings).await?;
        let message = OutgoingMessage::json("RefreshRemoteApplicationEvent", &event)
            .expect("a refresh event always encodes");
        let exchange = ExchangeSpec::topic(&args.exchange);
        let published = messaging.publish(&exchange, &args.exchange, message).await;
        messaging.close().await?;
        published
    }
    .await;
    match result {
        Ok(()) => {
            println!("refresh {} sent to {}", event.id, event.destination_service);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bus-refresh: {error}");
            ExitCode::FAILURE
        }
    }
}
