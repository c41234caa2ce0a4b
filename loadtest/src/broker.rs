//! The broker seen from outside: queue depths, garbage injected straight into a queue, and
//! cleanup. Reconnects when the broker went away (the broker-restart scenario); given a
//! cluster's nodes as a comma-separated list of URLs, as the services are, it connects to the
//! first that answers (a node-loss scenario may have killed the others).

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

use crate::error::Error;

pub struct Broker {
    /// The nodes to try, in order.
    urls: Vec<String>,
    link: Mutex<Link>,
}

/// One connection attempt, which lapin does not bound by itself (a node that is booting may
/// accept the TCP connection and answer nothing yet).
const ATTEMPT_LIMIT: Duration = Duration::from_secs(10);

/// One connection and its confirm-mode publishing channel.
struct Link {
    connection: Connection,
    publisher: Channel,
}

impl Link {
    /// A link to the first of `urls` that answers; the last one's error if none does.
    async fn open_any(urls: &[String]) -> Result<Self, Error> {
        let mut failure = None;
        for url in urls {
            match tokio::time::timeout(ATTEMPT_LIMIT, Self::open(url)).await {
                Ok(Ok(link)) => return Ok(link),
                Ok(Err(e)) => failure = Some(e),
                Err(_) => {
                    failure = Some(Error::BadArgument {
                        arg: "--amqp-url",
                        reason: format!(
                            "{} did not complete the AMQP handshake in {ATTEMPT_LIMIT:?}",
                            common::redact::redact_url(url)
                        ),
                    });
                }
            }
        }
        Err(failure.unwrap_or_else(|| Error::BadArgument {
            arg: "--amqp-url",
            reason: "no URL".into(),
        }))
    }

    async fn open(url: &str) -> Result<Self, Error> {
        let connection = Connection::connect(url, ConnectionProperties::default()).await?;
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            connection,
            publisher,
        })
    }
}

impl Broker {
    /// `urls`: one URL, or a cluster's nodes' joined with `,` (split as the services do).
    pub async fn connect(urls: &str) -> Result<Self, Error> {
        let urls: Vec<String> = common::redact::url_list(urls)
            .into_iter()
            .filter(|url| !url.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Self {
            link: Mutex::new(Link::open_any(&urls).await?),
            urls,
        })
    }

    /// The link, reopened first if the connection or the publishing channel was lost.
    async fn link(&self) -> Result<MutexGuard<'_, Link>, Error> {
        let mut link = self.link.lock().await;
        if !(link.connection.status().connected() && link.publisher.status().connected()) {
            *link = Link::open_any(&self.urls).await?;
        }
        Ok(link)
    }

    /// Messages ready in `queue` (not counting unacked ones), `None` if it does not exist.
    pub async fn depth(&self, queue: &str) -> Result<Option<u32>, Error> {
        // A failed passive declare closes its channel: use a fresh one each time.
        let channel = self.link().await?.connection.create_channel().await?;
        let options = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let found = channel
            .queue_declare(queue.into(), options, FieldTable::default())
            .await
            .ok()
            .map(|q| q.message_count());
        if channel.status().connected() {
            channel.close(200, "done".into()).await?;
        }
        Ok(found)
    }

    /// Publishes `body` to `queue` through the default exchange, persistent, with a confirm.
    pub async fn inject(&self, queue: &str, body: &[u8], message_id: &str) -> Result<(), Error> {
        let link = self.link().await?;
        link.publisher
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_message_id(message_id.into()),
            )
            .await?
            .await?;
        Ok(())
    }

    /// Deletes `queue`, `queue.dlq`, the exchange `queue.dlx` and `bus` (missing ones are
    /// fine).
    pub async fn delete(&self, queue: &str, bus: Option<&str>) -> Result<(), Error> {
        let channel = self.link().await?.connection.create_channel().await?;
        for q in [queue.to_owned(), format!("{queue}.dlq")] {
            channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        let dlx = format!("{queue}.dlx");
        for exchange in std::iter::once(dlx.as_str()).chain(bus) {
            channel
                .exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }
}
