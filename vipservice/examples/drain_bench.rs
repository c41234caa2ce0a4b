//! vipservice under load, as `scripts/bench-vipservice.sh` runs it: one release-built
//! vipservice process on a queue, a store and a config bus of its own, with the settings of
//! the repository's `config-repo/` (`application.yml`, `vipservice.yml`).
//!
//! ```text
//! cargo build --release -p vipservice --bin vipservice --example drain_bench
//! target/release/examples/drain_bench --vipservice target/release/vipservice
//! ```
//!
//! 1. Idle: start the service on the (empty) queue, wait for `/health` 200, wait 2 s, read
//!    `VmRSS`.
//! 2. Paced: on that service at rest, publish `--rate` notifications per second for
//!    `--seconds` s (`paced-{i}`), wait until all are offers, then stop it with SIGTERM.
//! 3. Drain: publish `-n` notifications (persistent, confirmed, `message_id` `drain-{i}`,
//!    `readAt` = the publish time, spread over `--accounts` account ids), then start the
//!    service on a fresh store and poll `/metrics` until `vip_offers_made_total` reaches `-n`.
//!    Offers/s = n / (last `offeredAt` - the instant the process was spawned).
//! 4. Per phase, read every account's offers (`GET /offers/{id}`) and compute
//!    `offeredAt - readAt`. `offeredAt` is stamped when the group's transaction begins; its commit (fsync)
//!    follows within milliseconds, and the offer is acked only after it.
//!
//! Peak RSS is `VmHWM` after each phase. Prints `name value` lines. The queue (with its
//! `.dlq`/`.dlx`), the bus exchange and the temp dir are removed at the end, also after a
//! failure; the service is stopped by its PID (SIGTERM, then SIGKILL after 30 s).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use common::contract::vipservice::OFFERS_MADE;
use common::messaging::{
    AmqpMessaging, Messaging, MessagingError, MessagingSettings, OutgoingMessage, QueueSpec,
    QueueType,
};
use common::notification::{MESSAGE_TYPE, VipNotification};
use serde_json::Value;
use test_support::{Broker, unique};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};
use vipservice::offers::Offer;

/// How long starting, draining or stopping may take before the run is declared stuck.
const PATIENCE: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Quorum,
    Classic,
}

#[derive(Parser)]
#[command(about = "Drain rate, latency and memory of the vipservice binary")]
struct Args {
    /// AMQP URI of the broker
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    uri: String,
    /// The vipservice binary (build it with --release)
    #[arg(long)]
    vipservice: PathBuf,
    /// Notifications pre-published for the drain
    #[arg(short = 'n', long, default_value_t = 100_000)]
    count: u64,
    /// Account ids the notifications are spread over
    #[arg(long, default_value_t = 1_000)]
    accounts: u64,
    /// Publishes in flight while pre-publishing
    #[arg(long, default_value_t = 1_000)]
    window: usize,
    /// Notifications per second in the paced run (0 skips it)
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Length of the paced run
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The queue type (`amqp.queue_type`; vipservice's default is quorum)
    #[arg(long, value_enum, default_value_t = Kind::Quorum)]
    queue_type: Kind,
    /// The consumer's prefetch (`amqp.prefetch`); the service default when absent
    #[arg(long)]
    prefetch: Option<u16>,
    /// The offers database (an empty PostgreSQL database, say); default: a fresh SQLite file
    /// per phase in the temp dir
    #[arg(long)]
    database_url: Option<String>,
    /// Keep the service's logs in this folder (they go with the temp dir otherwise); set
    /// `RUST_LOG` to choose what they hold
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.count > 0 && args.accounts > 0 && args.window > 0,
        "-n, --accounts and --window must be positive"
    );
    let vipservice = std::fs::canonicalize(&args.vipservice)
        .with_context(|| format!("no vipservice binary at {}", args.vipservice.display()))?;
    let bench = Bench {
        queue: unique("vip_queue.bench"),
        bus: unique("springCloudBus.bench"),
        dir: tempfile::tempdir().context("temp dir")?,
        vipservice,
        broker: Broker::connect().await,
        args,
    };
    bench.write_config()?;
    let mut running = None;
    let result = bench.all(&mut running).await;
    if let Some(vip) = running {
        vip.stop().await;
    }
    bench.broker.delete_work_queue(&bench.queue).await;
    bench.broker.delete(&[], &[&bench.bus]).await;
    result
}

struct Bench {
    args: Args,
    queue: String,
    bus: String,
    dir: tempfile::TempDir,
    vipservice: PathBuf,
    broker: Broker,
}

impl Bench {
    /// The repository's configuration (what the service ships with), and a `bench` profile on
    /// top for the port and the broker.
    fn write_config(&self) -> Result<()> {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config-repo");
        for file in ["application.yml", "vipservice.yml"] {
            std::fs::copy(shipped.join(file), self.dir.path().join(file))
                .with_context(|| format!("config-repo/{file} copied"))?;
        }
        let yaml = format!(
            "server_port: 0\nserver_name: vip-bench\namqp_server_url: {}\n",
            self.args.uri
        );
        std::fs::write(self.dir.path().join("vipservice-bench.yml"), yaml).context("config written")
    }

    fn queue_spec(&self) -> QueueSpec {
        let queue_type = match self.args.queue_type {
            Kind::Quorum => QueueType::Quorum,
            Kind::Classic => QueueType::Classic,
        };
        QueueSpec::work_queue(&self.queue, queue_type)
    }

    /// Every phase; the running service is left in `running` for the caller to stop.
    async fn all(&self, running: &mut Option<Vip>) -> Result<()> {
        let args = &self.args;
        println!(
            "drain_bench: n={} accounts={} queue_type={} prefetch={} paced={}/s x {} s",
            args.count,
            args.accounts,
            match args.queue_type {
                Kind::Quorum => "quorum",
                Kind::Classic => "classic",
            },
            args.prefetch
                .map_or_else(|| "default".to_owned(), |p| p.to_string()),
            args.rate,
            args.seconds
        );

        // 1. Idle.
        let spawned = Instant::now();
        let vip = running.insert(self.spawn("idle").await?);
        vip.wait_healthy().await?;
        println!("start_to_health_ms {}", spawned.elapsed().as_millis());
        sleep(Duration::from_secs(2)).await;
        println!("idle_rss_kb {}", vip.status_kb("VmRSS")?);
        // What the resident pages are: heap and stacks, or the mapped binary and libraries.
        println!("idle_rss_anon_kb {}", vip.status_kb("RssAnon")?);
        println!("idle_rss_file_kb {}", vip.status_kb("RssFile")?);
        println!("idle_threads {}", vip.status_kb("Threads")?);
        let publisher = AmqpMessaging::connect(MessagingSettings::new(&args.uri, "vip-bench"))
            .await
            .context("publisher connects")?;
        let queue = Arc::new(self.queue_spec());

        // 2. Paced, on the service at rest: a latency that is neither queueing nor the wake
        //    of a drain.
        if args.rate > 0 {
            let count = self.publish_paced(&publisher, &queue).await?;
            vip.wait_offers(count).await?;
            println!("paced_peak_rss_kb {}", vip.status_kb("VmHWM")?);
            let offers = vip.all_offers(args.accounts).await?;
            let paced: Vec<&Offer> = phase(&offers, "paced-");
            ensure!(
                paced.len() as u64 == count,
                "found {} paced offers, want {count}",
                paced.len()
            );
            report_latency("paced", &paced);
        }
        running.take().expect("running").stop().await;

        // 3. Drain, on a fresh start.
        let published = Instant::now();
        self.publish_backlog(&publisher, &queue).await?;
        let seconds = published.elapsed().as_secs_f64();
        println!("publish_msgs_per_s {:.0}", args.count as f64 / seconds);
        let depth = self.broker.queue_depth(&self.queue).await.unwrap_or(0);
        ensure!(
            u64::from(depth) == args.count,
            "the queue holds {depth} messages, not {}",
            args.count
        );
        let spawned_at = Utc::now();
        let vip = running.insert(self.spawn("drain").await?);
        vip.wait_offers(args.count).await?;
        println!("drain_peak_rss_kb {}", vip.status_kb("VmHWM")?);
        println!("drain_rss_anon_kb {}", vip.status_kb("RssAnon")?);
        publisher.close().await.context("publisher closes")?;

        // 4. The drain's latencies, from the offers themselves.
        let offers = vip.all_offers(args.accounts).await?;
        let drain: Vec<&Offer> = phase(&offers, "drain-");
        ensure!(
            drain.len() as u64 == args.count,
            "found {} drain offers, want {}",
            drain.len(),
            args.count
        );
        let last = drain
            .iter()
            .map(|o| o.offered_at)
            .max()
            .expect("some offers");
        let drain_seconds = seconds_between(spawned_at, last);
        println!("drain_seconds {drain_seconds:.3}");
        println!(
            "drain_offers_per_s {:.0}",
            args.count as f64 / drain_seconds
        );
        report_latency("drain", &drain);
        let vip = running.take().expect("running");
        vip.stop().await;
        Ok(())
    }

    async fn spawn(&self, name: &str) -> Result<Vip> {
        let log = self
            .args
            .log_dir
            .as_deref()
            .unwrap_or(self.dir.path())
            .join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).context("log file")?;
        let mut command = Command::new(&self.vipservice);
        command
            .arg("--config-repo")
            .arg(self.dir.path())
            .args(["--profile", "bench"])
            .env("LOG_FORMAT", "json")
            .env("GOBLOG_VIP_QUEUE", &self.queue)
            .env("GOBLOG_CONFIG_EVENT_BUS", &self.bus)
            .env(
                "GOBLOG_OFFERS__DATABASE_URL",
                self.args.database_url.clone().unwrap_or_else(|| {
                    format!("sqlite://{}/{name}.db?mode=rwc", self.dir.path().display())
                }),
            )
            .env(
                "GOBLOG_AMQP__QUEUE_TYPE",
                match self.args.queue_type {
                    Kind::Quorum => "quorum",
                    Kind::Classic => "classic",
                },
            )
            .stdin(Stdio::null())
            .stdout(log_file)
            .kill_on_drop(true);
        if let Some(prefetch) = self.args.prefetch {
            command.env("GOBLOG_AMQP__PREFETCH", prefetch.to_string());
        }
        let child = command.spawn().context("vipservice starts")?;
        let pid = child.id().context("vipservice has a pid")?;
        let mut vip = Vip {
            child,
            pid,
            base: String::new(),
            http: reqwest::Client::new(),
        };
        let port = wait_for_port(&log, &mut vip.child).await?;
        vip.base = format!("http://127.0.0.1:{port}");
        Ok(vip)
    }

    /// `-n` notifications, `--window` publishes awaiting their confirm at once.
    async fn publish_backlog(
        &self,
        publisher: &AmqpMessaging,
        queue: &Arc<QueueSpec>,
    ) -> Result<()> {
        let mut in_flight = JoinSet::new();
        for i in 0..self.args.count {
            if in_flight.len() >= self.args.window {
                finished(&mut in_flight).await?;
            }
            let message = self.notification("drain", i)?;
            let (publisher, queue) = (publisher.clone(), queue.clone());
            in_flight.spawn(async move { publisher.publish_on_queue(&queue, message).await });
        }
        while !in_flight.is_empty() {
            finished(&mut in_flight).await?;
        }
        Ok(())
    }

    /// `--rate` notifications a second for `--seconds`, in slices every 10 ms; each publish
    /// runs in its own task so a slow confirm does not hold back the pace. Returns how many.
    async fn publish_paced(
        &self,
        publisher: &AmqpMessaging,
        queue: &Arc<QueueSpec>,
    ) -> Result<u64> {
        const SLICE: Duration = Duration::from_millis(10);
        let total = self.args.rate * self.args.seconds;
        let started = Instant::now();
        let mut ticker = tokio::time::interval(SLICE);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut in_flight = JoinSet::new();
        let mut sent = 0;
        while sent < total {
            ticker.tick().await;
            // Catch up with the schedule, whatever the timer's jitter.
            let due = (started.elapsed().as_secs_f64() * self.args.rate as f64) as u64 + 1;
            while sent < due.min(total) {
                let message = self.notification("paced", sent)?;
                let (publisher, queue) = (publisher.clone(), queue.clone());
                in_flight.spawn(async move { publisher.publish_on_queue(&queue, message).await });
                sent += 1;
            }
            while let Some(joined) = in_flight.try_join_next() {
                joined.context("a publish task failed")??;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        while !in_flight.is_empty() {
            finished(&mut in_flight).await?;
        }
        println!("paced_msgs_per_s {:.0}", total as f64 / seconds);
        Ok(total)
    }

    /// Notification `i` of `phase`, read "now" (its `readAt` is the publish time).
    fn notification(&self, phase: &str, i: u64) -> Result<OutgoingMessage> {
        let notification = VipNotification::now(account(i % self.args.accounts));
        Ok(OutgoingMessage::json(MESSAGE_TYPE, &notification)?
            .with_message_id(format!("{phase}-{i}")))
    }
}

fn account(i: u64) -> String {
    format!("bench{i:04}")
}

async fn finished(in_flight: &mut JoinSet<Result<(), MessagingError>>) -> Result<()> {
    if let Some(joined) = in_flight.join_next().await {
        joined.context("a publish task failed")??;
    }
    Ok(())
}

fn phase<'a>(offers: &'a [Offer], prefix: &str) -> Vec<&'a Offer> {
    offers
        .iter()
        .filter(|o| o.message_id.starts_with(prefix))
        .collect()
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// p50, p99 and max of `offeredAt - readAt`, in ms.
fn report_latency(name: &str, offers: &[&Offer]) {
    let mut ms: Vec<f64> = offers
        .iter()
        .map(|o| seconds_between(o.read_at, o.offered_at) * 1e3)
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    println!("{name}_latency_p50_ms {:.2}", at(0.50));
    println!("{name}_latency_p99_ms {:.2}", at(0.99));
    println!("{name}_latency_max_ms {:.2}", at(1.0));
}

/// Waits for the service's "started" log line and returns its port.
async fn wait_for_port(log: &Path, child: &mut Child) -> Result<u16> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if event["message"] == "started"
                && let Some(port) = event["port"].as_u64().and_then(|p| u16::try_from(p).ok())
            {
                return Ok(port);
            }
        }
        if let Some(exit) = child.try_wait()? {
            bail!("vipservice exited with {exit} before starting; see its log:\n{text}");
        }
        ensure!(Instant::now() < deadline, "vipservice did not start");
        sleep(Duration::from_millis(5)).await;
    }
}

/// A running vipservice process.
struct Vip {
    child: Child,
    pid: u32,
    base: String,
    http: reqwest::Client,
}

impl Vip {
    async fn get(&self, path: &str) -> Result<reqwest::Response> {
        Ok(self.http.get(format!("{}{path}", self.base)).send().await?)
    }

    async fn wait_healthy(&self) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        while !self.get("/health").await?.status().is_success() {
            ensure!(Instant::now() < deadline, "/health stayed unhealthy");
            sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// The counter `name` on `/metrics` (0 while absent).
    async fn metric(&self, name: &str) -> Result<u64> {
        let text = self.get("/metrics").await?.text().await?;
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0))
    }

    /// Polls the offers counter until it reaches `count`.
    async fn wait_offers(&self, count: u64) -> Result<()> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let made = self.metric(OFFERS_MADE).await?;
            if made >= count {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "{OFFERS_MADE} stayed {made}, want {count}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// A figure of `/proc/<pid>/status` (in kB for sizes).
    fn status_kb(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|line| {
                let value = line.strip_prefix(field)?.strip_prefix(':')?;
                let value = value.trim();
                value
                    .strip_suffix("kB")
                    .unwrap_or(value)
                    .trim()
                    .parse()
                    .ok()
            })
            .with_context(|| format!("no {field} in /proc/{}/status", self.pid))
    }

    /// Every account's offers, four requests at a time.
    async fn all_offers(&self, accounts: u64) -> Result<Vec<Offer>> {
        let mut offers = Vec::new();
        let mut in_flight = JoinSet::new();
        for i in 0..accounts {
            if in_flight.len() >= 4 {
                offers.extend(joined(&mut in_flight).await?);
            }
            let (http, url) = (
                self.http.clone(),
                format!("{}/offers/{}?limit=1000", self.base, account(i)),
            );
            in_flight.spawn(async move {
                let response = http.get(&url).send().await?;
                if response.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(Vec::new());
                }
                Ok(response.error_for_status()?.json::<Vec<Offer>>().await?)
            });
        }
        while !in_flight.is_empty() {
            offers.extend(joined(&mut in_flight).await?);
        }
        Ok(offers)
    }

    /// SIGTERM, then SIGKILL if it has not exited within 30 s.
    async fn stop(mut self) {
        let termed = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if !matches!(termed, Ok(status) if status.success()) {
            eprintln!("drain_bench: could not SIGTERM vipservice {}", self.pid);
        }
        match timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(Ok(exit)) if exit.success() => {}
            Ok(Ok(exit)) => eprintln!("drain_bench: vipservice {} exited with {exit}", self.pid),
            _ => {
                eprintln!(
                    "drain_bench: vipservice {} ignored SIGTERM; killing it",
                    self.pid
                );
                let _ = self.child.kill().await;
            }
        }
    }
}

async fn joined(in_flight: &mut JoinSet<Result<Vec<Offer>>>) -> Result<Vec<Offer>> {
    match in_flight.join_next().await {
        Some(result) => result.context("an offers request failed")?,
        None => Ok(Vec::new()),
    }
}
