//! What Spring Cloud Config (or an operator) publishes on the bus, for tests of "a Go-style
//! refresh reaches our services". Go itself never publishes there.

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::protocol::constants::REPLY_SUCCESS;

use super::bus::declare_bus_exchange;
use super::event::BusEvent;
use super::{GoP9Error, close_connection, connect, open_channel};

/// Publishes a refresh for `destination_service` (e.g. `vipservice:**`) to `exchange` as the
/// config server does (see [`publish_bus_event`]); returns the event sent.
pub async fn publish_refresh(
    amqp_url: &str,
    exchange: &str,
    destination_service: &str,
) -> Result<BusEvent, GoP9Error> {
    let event = BusEvent::refresh(destination_service);
    publish_bus_event(amqp_url, exchange, event.to_json().as_bytes()).await?;
    Ok(event)
}

/// Publishes `body` to `exchange` as Spring Cloud Bus's producer (the stream rabbit binder) does:
/// declares `exchange` as Go does (a durable topic exchange, as the binder declares it), then
/// publishes with the routing key `exchange` (the binder's key for a non-partitioned
/// destination), content type `application/json`, persistent. The properties are the binder's
/// defaults as we understand them; Go ignores them. Returns once the broker has taken the
/// message (the channel's close-ok follows the publish); a connection of its own each time.
pub async fn publish_bus_event(
    amqp_url: &str,
    exchange: &str,
    body: &[u8],
) -> Result<(), GoP9Error> {
    let connection = connect(amqp_url).await?;
    let published = async {
        let channel = open_channel(&connection).await?;
        declare_bus_exchange(&channel, exchange).await?;
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        channel
            .basic_publish(
                exchange.into(),
                exchange.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .map_err(GoP9Error::at("basic.publish"))?;
        channel
            .close(REPLY_SUCCESS, "".into())
            .await
            .map_err(GoP9Error::at("channel.close"))
    };
    let published = published.await;
    let _ = close_connection(&connection).await;
    published
}
