//! A guard that deletes what a test declared on the broker when it is dropped, so a failing
//! test (a panic unwinds through its locals) leaves nothing behind either.

use std::io::Write;
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::{Connection, ConnectionProperties, ErrorKind};
use tokio::time::timeout;

use crate::amqp_url;

/// How long dropping a guard may take by default: deleting takes milliseconds, but a test must
/// never hang on its cleanup.
const LIMIT: Duration = Duration::from_secs(10);

/// Records the queues and exchanges a test declares and deletes them on drop.
///
/// Create it first in a test, so that it is dropped last, after the clients and services that
/// use those objects. Deleting happens on a thread of its own with its own runtime and
/// connection (`Drop` cannot await, and may run inside the test's runtime or while a panic
/// unwinds); it is bounded by a time limit, deleting what is absent is fine, and whatever goes
/// wrong is reported on stderr: the guard never panics.
///
/// ```no_run
/// let cleanup = test_support::Cleanup::new();
/// let queue = cleanup.work_queue(test_support::unique("orders"));
/// // ... declare and use `queue`; it, `{queue}.dlq` and `{queue}.dlx` are deleted at the end.
/// ```
pub struct Cleanup {
    url: String,
    limit: Duration,
    declared: Mutex<Declared>,
}

#[derive(Debug, Default)]
struct Declared {
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl std::fmt::Display for Declared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "queues [{}], exchanges [{}]",
            self.queues.join(", "),
            self.exchanges.join(", ")
        )
    }
}

impl Default for Cleanup {
    fn default() -> Self {
        Self::new()
    }
}

impl Cleanup {
    /// A guard for the test broker at [`amqp_url`].
    pub fn new() -> Self {
        Self::with_url(amqp_url())
    }

    /// A guard for the broker at `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            limit: LIMIT,
            declared: Mutex::default(),
        }
    }

    /// How long dropping may take at most (10 s unless told); what is not deleted by then is
    /// left on the broker and named on stderr.
    pub fn with_limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Records a queue of any kind, e.g. the Go services' classic, non-durable `vip_queue`
    /// ([`crate::go_p9`]); returns its name.
    pub fn queue(&self, name: impl Into<String>) -> String {
        let name = name.into();
        self.record(|declared| declared.queues.push(name.clone()));
        name
    }

    /// Records an exchange; returns its name.
    pub fn exchange(&self, name: impl Into<String>) -> String {
        let name = name.into();
        self.record(|declared| declared.exchanges.push(name.clone()));
        name
    }

    /// Records a work queue as `common::messaging` declares it: the queue, its dead-letter
    /// queue `{name}.dlq` and exchange `{name}.dlx`. Returns the queue's name.
    pub fn work_queue(&self, name: impl Into<String>) -> String {
        let name = name.into();
        self.record(|declared| {
            declared.queues.push(name.clone());
            declared.queues.push(format!("{name}.dlq"));
            declared.exchanges.push(format!("{name}.dlx"));
        });
        name
    }

    fn record(&self, add: impl FnOnce(&mut Declared)) {
        add(&mut self.declared.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let declared = std::mem::take(
            self.declared
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if declared.queues.is_empty() && declared.exchanges.is_empty() {
            return;
        }
        let (url, limit) = (self.url.clone(), self.limit);
        let (done, outcome) = mpsc::channel();
        let names = declared.to_string();
        let spawned = std::thread::Builder::new()
            .name("broker-cleanup".into())
            .spawn(move || {
                let _ = done.send(delete_blocking(&url, &declared, limit));
            });
        let problem = match spawned {
            Err(error) => format!("could not start its thread ({error})"),
            // A little longer than the deletes' own limit, which includes connecting.
            Ok(_) => match outcome.recv_timeout(limit + Duration::from_millis(500)) {
                Ok(Ok(())) => return,
                Ok(Err(problem)) => problem,
                Err(_) => format!("gave up after {limit:?}"),
            },
        };
        // Not eprintln!, which panics if stderr is gone; a Drop must not panic.
        let _ = writeln!(
            std::io::stderr(),
            "test-support cleanup: {problem}; possibly left on the broker: {names}"
        );
    }
}

/// Deletes everything in `declared` within `limit`, on the calling thread, which must not be
/// inside a tokio runtime.
fn delete_blocking(url: &str, declared: &Declared, limit: Duration) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("no runtime ({error})"))?;
    runtime.block_on(async {
        timeout(limit, delete(url, declared))
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {limit:?}")))
    })
}

async fn delete(url: &str, declared: &Declared) -> Result<(), String> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .map_err(|error| format!("cannot connect ({error})"))?;
    let queues = declared.queues.iter().map(|name| ("queue", name));
    let exchanges = declared.exchanges.iter().map(|name| ("exchange", name));
    let mut failed = Vec::new();
    // Queues first (their bindings go with them), each on a channel of its own: a refusal
    // closes the channel it happened on.
    for (kind, name) in queues.chain(exchanges) {
        let deleted = async {
            let channel = connection.create_channel().await?;
            if kind == "queue" {
                let options = QueueDeleteOptions::default();
                channel
                    .queue_delete(name.as_str().into(), options)
                    .await
                    .map(drop)
            } else {
                let options = ExchangeDeleteOptions::default();
                channel.exchange_delete(name.as_str().into(), options).await
            }
        };
        if let Err(error) = deleted.await
            && !is_absent(&error)
        {
            failed.push(format!("{kind} {name:?}: {error}"));
        }
    }
    let _ = connection.close(200, "test cleanup done".into()).await;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("could not delete {}", failed.join(", ")))
    }
}

/// NOT_FOUND: it is gone already, which is what we want.
fn is_absent(error: &lapin::Error) -> bool {
    matches!(error.kind(), ErrorKind::ProtocolError(amqp)
        if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)))
}
