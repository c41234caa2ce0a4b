//! Throughput of `common::messaging` on a real broker, in the shape of the raw lapin figures of
//! the workspace's `raw-lapin` (bench/raw-lapin) so the two can be compared line by line (same figure names,
//! same ~100-byte JSON body, same window, same prefetch, same runtime flavour).
//!
//! ```text
//! cargo run --release -p common --example messaging_bench -- -n 100000 --runs 3
//! ```
//!
//! Figures (each runs `--runs` times on a fresh, uniquely named queue; the median is printed):
//! - `publish_confirm_quorum` / `publish_confirm_durable` (classic): `publish_on_queue` with
//!   `--window` publishes in flight at once, each returning after the broker's confirm.
//! - `consume_ack_prefetch<P>` (classic; `consume_ack_quorum_prefetch<P>` for quorum): a queue
//!   pre-filled with `-n` messages, drained through `subscribe_to_queue` with the client's
//!   prefetch set to `P`; timed from the subscribe call until the handler has seen `-n`
//!   messages (acks follow each handler; `close` then waits for them).
//!
//! Queues (with their `.dlq` and `.dlx`) are deleted at the end, also after a failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use common::messaging::{
    AmqpMessaging, HandlerError, HandlerFn, IncomingMessage, Messaging, MessagingSettings,
    OutgoingMessage, QueueSpec, QueueType,
};
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// The same 100 bytes of JSON as broker-limit publishes.
const PAYLOAD: &[u8] = br#"{"id":"7f3c9a2e-41b7-4c0d-9e8a-2b5d6f1a0c34","type":"order.created","qty":3,"ts":1767225600123}     "#;

/// How long a queue's message count may take to settle.
const DEPTH_PATIENCE: Duration = Duration::from_secs(10);
/// How long a drain may take before the run is declared stuck.
const DRAIN_PATIENCE: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Quorum,
    Classic,
}

impl Kind {
    fn queue_type(self) -> QueueType {
        match self {
            Self::Quorum => QueueType::Quorum,
            Self::Classic => QueueType::Classic,
        }
    }
}

#[derive(Parser)]
#[command(about = "Publish-with-confirms and consume rates of common::messaging")]
struct Args {
    /// AMQP URI of the broker
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    uri: String,
    /// Messages per run
    #[arg(short = 'n', long, default_value_t = 100_000)]
    count: u64,
    /// Runs per figure (the median is printed)
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Publishes in flight at once
    #[arg(long, default_value_t = 1_000)]
    window: usize,
    /// Queue types to measure (comma-separated); broker-limit's consume figures use classic
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Kind::Quorum, Kind::Classic])]
    queue_type: Vec<Kind>,
    /// Prefetch values for the consume figures (comma-separated; the client's default is 200)
    #[arg(long, value_delimiter = ',', default_values_t = [100u16, 1000])]
    prefetch: Vec<u16>,
    /// Only run figures whose name contains this text
    #[arg(long)]
    only: Option<String>,
    /// Use tokio's multi-thread runtime instead of current-thread (as broker-limit)
    #[arg(long)]
    multi_thread: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.count > 0 && args.runs > 0 && args.window > 0,
        "-n, --runs and --window must be positive"
    );
    ensure!(
        args.prefetch.iter().all(|&p| p > 0),
        "--prefetch values must be positive"
    );
    let mut runtime = if args.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    runtime.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    println!(
        "messaging_bench: runtime {}, n={}, runs={}, window={}",
        if args.multi_thread {
            "multi-thread"
        } else {
            "current-thread"
        },
        args.count,
        args.runs,
        args.window
    );
    let admin = Admin::connect(&args.uri).await?;
    let mut bench = Bench {
        args,
        admin,
        queues: Vec::new(),
    };
    let result = bench.all().await;
    bench.cleanup().await;
    let _ = bench.admin.conn.close(200, "done".into()).await;
    result
}

struct Bench {
    args: Args,
    admin: Admin,
    /// Every queue made, for cleanup.
    queues: Vec<QueueSpec>,
}

impl Bench {
    async fn all(&mut self) -> Result<()> {
        for kind in self.args.queue_type.clone() {
            let figure = match kind {
                Kind::Quorum => "publish_confirm_quorum",
                Kind::Classic => "publish_confirm_durable",
            };
            self.publish(figure, kind).await?;
        }
        for kind in self.args.queue_type.clone() {
            for prefetch in self.args.prefetch.clone() {
                let figure = match kind {
                    Kind::Classic => format!("consume_ack_prefetch{prefetch}"),
                    Kind::Quorum => format!("consume_ack_quorum_prefetch{prefetch}"),
                };
                self.consume(&figure, kind, prefetch).await?;
            }
        }
        Ok(())
    }

    fn wants(&self, figure: &str) -> bool {
        self.args.only.as_deref().is_none_or(|o| figure.contains(o))
    }

    fn queue(&mut self, figure: &str, kind: Kind) -> QueueSpec {
        let spec = QueueSpec::work_queue(
            format!(
                "messaging-bench.{figure}.{}.{}",
                std::process::id(),
                self.queues.len()
            ),
            kind.queue_type(),
        );
        self.queues.push(spec.clone());
        spec
    }

    fn settings(&self, prefetch: u16) -> MessagingSettings {
        let mut settings = MessagingSettings::new(&self.args.uri, "messaging-bench");
        settings.prefetch = prefetch;
        settings
    }

    async fn publish(&mut self, figure: &str, kind: Kind) -> Result<()> {
        if !self.wants(figure) {
            return Ok(());
        }
        let (n, window) = (self.args.count, self.args.window);
        let mut rates = Vec::new();
        for _ in 0..self.args.runs {
            let queue = Arc::new(self.queue(figure, kind));
            let client = AmqpMessaging::connect(self.settings(200)).await?;
            // The first publish declares the queue; the raw figure declares before its clock.
            client
                .publish_on_queue(&queue, message())
                .await
                .context("declaring publish")?;
            let started = Instant::now();
            publish_window(&client, &queue, n, window).await?;
            rates.push(rate(n, started.elapsed()));
            client.close().await?;
            self.cleanup().await;
        }
        report(figure, &format!("n={n} window={window}"), &rates);
        Ok(())
    }

    async fn consume(&mut self, figure: &str, kind: Kind, prefetch: u16) -> Result<()> {
        if !self.wants(figure) {
            return Ok(());
        }
        let n = self.args.count;
        let mut rates = Vec::new();
        for _ in 0..self.args.runs {
            let queue = Arc::new(self.queue(figure, kind));
            let filler = AmqpMessaging::connect(self.settings(prefetch)).await?;
            publish_window(&filler, &queue, n, self.args.window)
                .await
                .context("pre-filling")?;
            filler.close().await?;
            self.admin.wait_for_depth(&queue.name, n).await?;

            let client = AmqpMessaging::connect(self.settings(prefetch)).await?;
            let seen = Arc::new(AtomicU64::new(0));
            let all_seen = Arc::new(Notify::new());
            let handler = {
                let (seen, all_seen) = (seen.clone(), all_seen.clone());
                HandlerFn(move |_message: IncomingMessage| {
                    if seen.fetch_add(1, Ordering::Relaxed) + 1 == n {
                        all_seen.notify_one();
                    }
                    std::future::ready(Ok::<(), HandlerError>(()))
                })
            };
            let started = Instant::now();
            client
                .subscribe_to_queue(&queue, "bench", Arc::new(handler))
                .await?;
            tokio::time::timeout(DRAIN_PATIENCE, all_seen.notified())
                .await
                .with_context(|| {
                    format!(
                        "the handler saw {} of {n} messages",
                        seen.load(Ordering::Relaxed)
                    )
                })?;
            rates.push(rate(n, started.elapsed()));
            client.close().await?;
            self.admin.wait_for_depth(&queue.name, 0).await?;
            self.cleanup().await;
        }
        report(figure, &format!("n={n} prefetch={prefetch}"), &rates);
        Ok(())
    }

    async fn cleanup(&mut self) {
        for spec in self.queues.drain(..) {
            self.admin.delete(&spec).await;
        }
    }
}

/// Publishes `n` messages with up to `window` `publish_on_queue` calls in flight, each in its
/// own task (as concurrent request handlers would).
async fn publish_window(
    client: &AmqpMessaging,
    queue: &Arc<QueueSpec>,
    n: u64,
    window: usize,
) -> Result<()> {
    let mut in_flight = JoinSet::new();
    for _ in 0..n {
        if in_flight.len() >= window {
            finished(&mut in_flight).await?;
        }
        let (client, queue) = (client.clone(), queue.clone());
        in_flight.spawn(async move { client.publish_on_queue(&queue, message()).await });
    }
    while !in_flight.is_empty() {
        finished(&mut in_flight).await?;
    }
    Ok(())
}

async fn finished(
    in_flight: &mut JoinSet<Result<(), common::messaging::MessagingError>>,
) -> Result<()> {
    if let Some(joined) = in_flight.join_next().await {
        joined.context("a publish task failed")??;
    }
    Ok(())
}

/// A message as a service would send it: the 100-byte body under a fresh id.
fn message() -> OutgoingMessage {
    OutgoingMessage {
        kind: "order.created".to_owned(),
        message_id: uuid::Uuid::new_v4().to_string(),
        body: Bytes::from_static(PAYLOAD),
        trace_parent: None,
    }
}

/// A plain lapin connection for what the library does not do: counting and deleting queues.
struct Admin {
    conn: Connection,
    ctl: Channel,
}

impl Admin {
    async fn connect(uri: &str) -> Result<Self> {
        let conn = Connection::connect(uri, ConnectionProperties::default())
            .await
            .context("connecting to the broker")?;
        let ctl = conn.create_channel().await?;
        Ok(Self { conn, ctl })
    }

    /// Waits until `queue` holds exactly `n` ready messages (a quorum queue's count may lag
    /// its confirms and acks a little).
    async fn wait_for_depth(&mut self, queue: &str, n: u64) -> Result<()> {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let deadline = Instant::now() + DEPTH_PATIENCE;
        loop {
            let depth = self
                .channel()
                .await?
                .queue_declare(queue.into(), passive, FieldTable::default())
                .await
                .with_context(|| format!("counting {queue}"))?
                .message_count();
            if u64::from(depth) == n {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{queue} holds {depth} messages, not {n}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The control channel, reopened if the broker closed it after a refused operation.
    async fn channel(&mut self) -> Result<&Channel> {
        if !self.ctl.status().connected() {
            self.ctl = self.conn.create_channel().await?;
        }
        Ok(&self.ctl)
    }

    /// Deletes the queue, its dead-letter queue and exchange; a failure is reported, not fatal.
    async fn delete(&mut self, spec: &QueueSpec) {
        for queue in [spec.name.clone(), spec.dead_letter_queue()] {
            let deleted = match self.channel().await {
                Ok(ch) => ch
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await
                    .map(drop)
                    .map_err(anyhow::Error::from),
                Err(error) => Err(error),
            };
            if let Err(error) = deleted {
                eprintln!("messaging_bench: could not delete queue {queue}: {error:#}");
            }
        }
        let dlx = spec.dead_letter_exchange();
        let deleted = match self.channel().await {
            Ok(ch) => ch
                .exchange_delete(dlx.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .map_err(anyhow::Error::from),
            Err(error) => Err(error),
        };
        if let Err(error) = deleted {
            eprintln!("messaging_bench: could not delete exchange {dlx}: {error:#}");
        }
    }
}

fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One line per figure, in broker-limit's format: `<figure> <params> <median> msgs/s (runs: ...)`.
fn report(figure: &str, params: &str, runs: &[f64]) {
    let each: Vec<String> = runs.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "{figure:<30} {params:<24} {:>8.0} msgs/s   (runs: {})",
        median(runs.to_vec()),
        each.join(" ")
    );
}
