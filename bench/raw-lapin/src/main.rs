//! Raw `RabbitMQ` limits for small (~100 byte) JSON messages, measured with lapin.
//! Every figure runs `--runs` times on a fresh queue; one line per figure shows the median.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use clap::Parser;
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

/// 100 bytes of JSON, roughly what a small domain event looks like.
const PAYLOAD: &[u8] = br#"{"id":"7f3c9a2e-41b7-4c0d-9e8a-2b5d6f1a0c34","type":"order.created","qty":3,"ts":1767225600123}     "#;

#[derive(Parser)]
#[command(about = "Measure raw RabbitMQ publish/consume limits for ~100 byte messages")]
struct Args {
    /// AMQP URI of the broker
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    uri: String,
    /// Messages per throughput run
    #[arg(short = 'n', long, default_value_t = 100_000)]
    count: u32,
    /// Round trips per latency run
    #[arg(long, default_value_t = 2_000)]
    round_trips: u32,
    /// Unconfirmed publishes allowed in flight
    #[arg(long, default_value_t = 1_000)]
    window: usize,
    /// Runs per figure (the median is printed)
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Only run figures whose name contains this text
    #[arg(long)]
    only: Option<String>,
    /// Use tokio's multi-thread runtime instead of current-thread
    /// (lapin already runs its own I/O thread per connection)
    #[arg(long)]
    multi_thread: bool,
}

#[derive(Clone, Copy)]
enum Kind {
    Transient,
    Durable,
    Quorum,
}

struct Bench {
    conn: Connection,
    ctl: Channel,
    args: Args,
    queues: Vec<String>,
}

impl Bench {
    async fn channel(&self) -> Result<Channel> {
        Ok(self.conn.create_channel().await?)
    }

    /// Declares a fresh queue of the given kind and remembers it for cleanup.
    async fn queue(&mut self, figure: &str, kind: Kind) -> Result<String> {
        let name = format!(
            "raw-lapin.{figure}.{}.{}",
            std::process::id(),
            self.queues.len()
        );
        let mut args = FieldTable::default();
        if let Kind::Quorum = kind {
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        let opts = QueueDeclareOptions {
            durable: !matches!(kind, Kind::Transient),
            ..Default::default()
        };
        self.ctl
            .queue_declare(name.as_str().into(), opts, args)
            .await?;
        self.queues.push(name.clone());
        Ok(name)
    }

    async fn cleanup(&mut self) {
        for q in self.queues.drain(..) {
            let _ = self
                .ctl
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }

    fn wants(&self, figure: &str) -> bool {
        self.args.only.as_deref().is_none_or(|o| figure.contains(o))
    }

    /// a, e: pipelined publishing with confirms into a durable classic or quorum queue.
    async fn publish_confirm(&mut self, figure: &str, kind: Kind) -> Result<()> {
        if !self.wants(figure) {
            return Ok(());
        }
        let mut rates = Vec::new();
        for _ in 0..self.args.runs {
            let q = self.queue(figure, kind).await?;
            let ch = self.channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            let t = Instant::now();
            publish(&ch, &q, self.args.count, true, Some(self.args.window)).await?;
            rates.push(rate(self.args.count, t.elapsed()));
            self.cleanup().await;
        }
        report_rate(
            figure,
            &format!("n={} window={}", self.args.count, self.args.window),
            &rates,
        );
        Ok(())
    }

    /// b: fire-and-forget publishing of transient messages; timed until the queue holds all of them.
    async fn publish_no_confirm(&mut self, figure: &str) -> Result<()> {
        if !self.wants(figure) {
            return Ok(());
        }
        let mut rates = Vec::new();
        for _ in 0..self.args.runs {
            let q = self.queue(figure, Kind::Transient).await?;
            let ch = self.channel().await?;
            let t = Instant::now();
            publish(&ch, &q, self.args.count, false, None).await?;
            wait_for_depth(&ch, &q, self.args.count).await?;
            rates.push(rate(self.args.count, t.elapsed()));
            self.cleanup().await;
        }
        report_rate(figure, &format!("n={}", self.args.count), &rates);
        Ok(())
    }

    /// c: drain a pre-filled durable queue with manual per-message acks.
    async fn consume(&mut self, figure: &str, prefetch: u16) -> Result<()> {
        if !self.wants(figure) {
            return Ok(());
        }
        let n = self.args.count;
        let mut rates = Vec::new();
        for _ in 0..self.args.runs {
            let q = self.queue(figure, Kind::Durable).await?;
            let filler = self.channel().await?;
            filler
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            publish(&filler, &q, n, true, Some(self.args.window)).await?;
            let ch = self.channel().await?;
            let t = Instant::now();
            let mut consumer = consume(&ch, &q, prefetch).await?;
            for _ in 0..n {
                next(&mut consumer)
                    .await?
                    .ack(BasicAckOptions::default())
                    .await?;
            }
            rates.push(rate(n, t.elapsed()));
            ch.close(200, "done".into()).await?;
            self.cleanup().await;
        }
        report_rate(figure, &format!("n={n} prefetch={prefetch}"), &rates);
        Ok(())
    }

    /// d: one persistent message at a time into a durable queue.
    /// `e2e`: publish -> delivered to a consumer on the same connection.
    /// `confirm`: publish -> broker confirm (what a publisher waiting per message sees).
    async fn latency(&mut self) -> Result<()> {
        let (e2e, confirm) = ("latency_e2e_durable", "latency_confirm_durable");
        let (want_e2e, want_confirm) = (self.wants(e2e), self.wants(confirm));
        if !want_e2e && !want_confirm {
            return Ok(());
        }
        let rt = self.args.round_trips;
        let props = BasicProperties::default().with_delivery_mode(2);
        let (mut e2e_runs, mut confirm_runs) = (Vec::new(), Vec::new());
        for _ in 0..self.args.runs {
            let q = self.queue("latency", Kind::Durable).await?;
            if want_e2e {
                let pubch = self.channel().await?;
                let subch = self.channel().await?;
                let mut consumer = consume(&subch, &q, 100).await?;
                let mut samples = Vec::with_capacity(rt as usize);
                for i in 0..rt + rt / 10 {
                    let t = Instant::now();
                    pubch
                        .basic_publish(
                            "".into(),
                            q.as_str().into(),
                            BasicPublishOptions::default(),
                            PAYLOAD,
                            props.clone(),
                        )
                        .await?;
                    let d = next(&mut consumer).await?;
                    let us = t.elapsed().as_secs_f64() * 1e6;
                    d.ack(BasicAckOptions::default()).await?;
                    if i >= rt / 10 {
                        samples.push(us); // the first 10% are warm-up
                    }
                }
                e2e_runs.push(percentiles(samples));
                subch.close(200, "done".into()).await?;
            }
            if want_confirm {
                let ch = self.channel().await?;
                ch.confirm_select(ConfirmSelectOptions::default()).await?;
                let mut samples = Vec::with_capacity(rt as usize);
                for i in 0..rt + rt / 10 {
                    let t = Instant::now();
                    let c = ch
                        .basic_publish(
                            "".into(),
                            q.as_str().into(),
                            BasicPublishOptions::default(),
                            PAYLOAD,
                            props.clone(),
                        )
                        .await?
                        .await?;
                    ensure!(c.is_ack(), "message nacked");
                    if i >= rt / 10 {
                        samples.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                }
                confirm_runs.push(percentiles(samples));
            }
            self.cleanup().await;
        }
        for (figure, runs) in [(e2e, e2e_runs), (confirm, confirm_runs)] {
            if !runs.is_empty() {
                let p50 = median(runs.iter().map(|r| r.0).collect());
                let p99 = median(runs.iter().map(|r| r.1).collect());
                println!(
                    "{figure:<30} n={rt:<7} p50 {p50:>8.0} µs   p99 {p99:>8.0} µs   (median of {} runs)",
                    runs.len()
                );
            }
        }
        Ok(())
    }
}

/// Publishes `n` messages; with `window`, awaits the oldest confirm whenever `window` are outstanding.
async fn publish(
    ch: &Channel,
    q: &str,
    n: u32,
    persistent: bool,
    window: Option<usize>,
) -> Result<()> {
    let props = BasicProperties::default().with_delivery_mode(if persistent { 2 } else { 1 });
    let mut in_flight = VecDeque::with_capacity(window.unwrap_or(0));
    for _ in 0..n {
        let confirm = ch
            .basic_publish(
                "".into(),
                q.into(),
                BasicPublishOptions::default(),
                PAYLOAD,
                props.clone(),
            )
            .await?;
        if let Some(w) = window {
            in_flight.push_back(confirm);
            if in_flight.len() >= w {
                ensure!(
                    in_flight.pop_front().unwrap().await?.is_ack(),
                    "message nacked"
                );
            }
        }
    }
    for confirm in in_flight {
        ensure!(confirm.await?.is_ack(), "message nacked");
    }
    Ok(())
}

async fn consume(ch: &Channel, q: &str, prefetch: u16) -> Result<Consumer> {
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    Ok(ch
        .basic_consume(
            q.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?)
}

async fn next(consumer: &mut Consumer) -> Result<lapin::message::Delivery> {
    match consumer.next().await {
        Some(d) => Ok(d?),
        None => bail!("consumer cancelled"),
    }
}

async fn wait_for_depth(ch: &Channel, q: &str, n: u32) -> Result<()> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while ch
        .queue_declare(q.into(), passive, FieldTable::default())
        .await?
        .message_count()
        < n
    {
        ensure!(
            Instant::now() < deadline,
            "queue {q} never reached {n} messages"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

fn rate(n: u32, d: Duration) -> f64 {
    f64::from(n) / d.as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |pct: usize| v[(v.len() - 1) * pct / 100];
    (at(50), at(99))
}

fn report_rate(figure: &str, params: &str, runs: &[f64]) {
    let each: Vec<String> = runs.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "{figure:<30} {params:<24} {:>8.0} msgs/s   (runs: {})",
        median(runs.to_vec()),
        each.join(" ")
    );
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.count > 0 && args.round_trips > 0 && args.window > 0 && args.runs > 0,
        "counts must be positive"
    );
    let mut rt = if args.multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    rt.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let conn = Connection::connect(&args.uri, ConnectionProperties::default()).await?;
    let ctl = conn.create_channel().await?;
    let mut bench = Bench {
        conn,
        ctl,
        args,
        queues: Vec::new(),
    };
    let result = async {
        bench
            .publish_confirm("publish_confirm_durable", Kind::Durable)
            .await?;
        bench
            .publish_no_confirm("publish_noconfirm_transient")
            .await?;
        bench.consume("consume_ack_prefetch100", 100).await?;
        bench.consume("consume_ack_prefetch1000", 1000).await?;
        bench.latency().await?;
        bench
            .publish_confirm("publish_confirm_quorum", Kind::Quorum)
            .await
    }
    .await;
    bench.cleanup().await;
    let _ = bench.conn.close(200, "done".into()).await;
    result
}
