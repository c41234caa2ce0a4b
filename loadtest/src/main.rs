//! goblog-rs end-to-end load test: drives accountservice, then reconciles every accepted VIP
//! read against vipservice's offers, the outbox and the dead-letter queue.
//!
//! Beside the load test, modes that `scripts/loadtest.sh` runs next to it: `--proxy` (a broker
//! connection it can blackhole), `--cleanup` (the run's queues) and `loadtest cluster` (a
//! RabbitMQ cluster of its own and the faults of a cluster scenario: [`cluster`],
//! [`schedule`]).

mod broker;
mod cluster;
mod compare;
mod error;
mod faults;
mod ids;
mod load;
mod outage;
mod prom;
mod proxy;
mod reconcile;
mod report;
mod rss;
mod schedule;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;

use crate::broker::Broker;
use crate::compare::RawLimits;
use crate::error::Error;
use crate::faults::{FaultReport, Faults};
use crate::ids::IdRange;
use crate::load::{Counters, Extension, Phase, Plan};
use crate::outage::{Outage, OutageReport};
use crate::reconcile::{Targets, Window};
use crate::report::{GapReport, PhaseReport, Quantiles, Report};
use crate::rss::{PeakRss, Watched};

#[derive(Debug, Parser)]
#[command(
    about = "Load accountservice and account for every VIP notification",
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    mode: Option<Mode>,
    /// Name printed in the report.
    #[arg(long, default_value = "adhoc")]
    scenario: String,
    /// accountservice base URL.
    #[arg(long, default_value = "http://127.0.0.1:6767")]
    account_url: String,
    /// vipservice replicas' base URLs (repeat).
    #[arg(long = "vip-url", default_values_t = ["http://127.0.0.1:6868".to_owned()])]
    vip_urls: Vec<String>,
    /// Load phases, `SECONDS:VIP_FRACTION`, run in order (repeat).
    #[arg(long = "phase", default_values_t = ["20:0.1".to_owned()])]
    phases: Vec<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Total requests per second (default: as fast as answers come).
    #[arg(long)]
    rate: Option<f64>,
    /// VIP account ids (must match accountservice's `vip_account_ids`).
    #[arg(long, default_value = "10000-10049")]
    vip_ids: String,
    /// Account ids read as non-VIP.
    #[arg(long, default_value = "10050-10099")]
    other_ids: String,
    /// The broker, to watch the queue and inject poison.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    amqp_url: String,
    /// The VIP work queue (its dead-letter queue is `<queue>.dlq`).
    #[arg(long, default_value = "vip_queue")]
    vip_queue: String,
    /// The offers database vipservice writes (its `offers.database_url`), read after the
    /// drain to account for every notification in one query.
    #[arg(long, default_value = "sqlite://data/vipservice.db?mode=ro")]
    database_url: String,
    /// Share of the queue's messages injected as garbage straight into it (0..1).
    #[arg(long, default_value_t = 0.0)]
    poison_fraction: f64,
    /// How long to wait after the load for the outbox and the queue to drain.
    #[arg(long, default_value_t = 60)]
    drain_seconds: u64,
    /// `NAME=PIDFILE` of a service whose peak RSS to report (repeat); re-read every second.
    #[arg(long = "pid-file", value_parser = rss::parse_watched)]
    pid_files: Vec<Watched>,
    /// File where the fault scenario writes `down <unix ms>` and `back <unix ms>` around the
    /// outage it causes (broker or database); read after the drain, to report the errors
    /// during it and the time from its end to the first offer.
    #[arg(long)]
    outage_file: Option<PathBuf>,
    /// Raw publish-with-confirms rate into a quorum queue (msg/s, from raw-lapin), to
    /// compare against.
    #[arg(long, requires = "raw_consume_ack")]
    raw_publish_confirm_quorum: Option<f64>,
    /// Raw consume-with-ack rate (msg/s, from raw-lapin), to compare against.
    #[arg(long, requires = "raw_publish_confirm_quorum")]
    raw_consume_ack: Option<f64>,
    /// Pass only if no non-VIP read failed (the disk-full scenario: a full outbox may refuse
    /// VIP reads, with 503, and nothing else).
    #[arg(long)]
    only_vip_refused: bool,
    /// Instead of a load test: forward connections to this address (the broker) until
    /// SIGTERM; SIGUSR1 blackholes them (nothing forwarded, nothing closed: a partition),
    /// SIGUSR2 ends that. The address it listens on goes to `--proxy-address-file`.
    #[arg(long, requires = "proxy_address_file")]
    proxy: Option<std::net::SocketAddr>,
    #[arg(long)]
    proxy_address_file: Option<PathBuf>,
    /// Instead of a load test: delete the queue, its `.dlq` and `.dlx`, and `--bus-exchange`.
    #[arg(long)]
    cleanup: bool,
    /// The services' Spring Cloud Bus exchange, deleted by `--cleanup`.
    #[arg(long)]
    bus_exchange: Option<String>,
    /// The faults file of `loadtest cluster`: the last phase of the load goes on past its
    /// planned end until the file says the fault schedule is over (at most
    /// `--extension-limit` seconds more), and the report gives each fault with what it cost.
    #[arg(long)]
    faults_file: Option<PathBuf>,
    /// The longest the load goes on past its planned end for the fault schedule, in seconds.
    #[arg(long, default_value_t = 300)]
    extension_limit: u64,
}

#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Instead of a load test: start a RabbitMQ cluster of this machine's rabbitmq-server
    /// (nodes of its own, needs root), write its URLs for the services, run a scenario's
    /// faults once the load started (SIGUSR1), and remove every node on SIGTERM or SIGINT.
    Cluster(cluster::ClusterArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let mut args = Args::parse();
    if let Some(Mode::Cluster(cluster_args)) = args.mode.take() {
        return match cluster::run(cluster_args).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadtest cluster: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    let outage_expected = args.outage_file.is_some();
    let only_vip_refused = args.only_vip_refused;
    // Ctrl-C reaches the script's jobs too (whose SIGINT bash would ignore): the run ends at
    // once, for the script to clean up, instead of draining a pipeline that is going away.
    let outcome = tokio::select! {
        outcome = run(args) => outcome,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("loadtest: interrupted");
            return std::process::ExitCode::from(130);
        }
    };
    match outcome {
        Ok(None) => std::process::ExitCode::SUCCESS,
        Ok(Some(report)) => {
            report.print_table();
            println!();
            compare::print_table(
                "against the Go original (BENCHMARKS.md, \"The Go original\")",
                "Go original",
                &report.against_go,
            );
            if !report.against_raw.is_empty() {
                println!();
                compare::print_table(
                    "against the raw broker (raw-lapin, this invocation)",
                    "raw limit",
                    &report.against_raw,
                );
            }
            match report.json_line() {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("cannot print the JSON line: {e}"),
            }
            // Every notification must be accounted for, and offered once: the offers' primary
            // key leaves no room for a duplicate, whatever the fault.
            let passed = report.lost == 0
                && report.unanswered_delivered <= as_i64(report.vip_in_doubt)
                && report.duplicate_offers == 0
                && report.drained
                && (report.outage.is_some() || !outage_expected)
                && report.fault_schedule_error.is_none()
                && (!only_vip_refused || report.other_reads_failed == 0);
            if passed {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<Option<Report>, Error> {
    if let (Some(upstream), Some(file)) = (args.proxy, &args.proxy_address_file) {
        proxy::run(upstream, file).await?;
        return Ok(None);
    }
    let phases = args
        .phases
        .iter()
        .map(|p| p.parse())
        .collect::<Result<Vec<Phase>, _>>()?;
    if args.concurrency == 0 || !(0.0..1.0).contains(&args.poison_fraction) {
        return Err(Error::BadArgument {
            arg: "--concurrency/--poison-fraction",
            reason: "concurrency must be ≥ 1 and the poison fraction within 0..1".into(),
        });
    }
    let vip_ids: IdRange = args.vip_ids.parse()?;
    let plan = Arc::new(Plan {
        base_url: args.account_url.clone(),
        phases,
        concurrency: args.concurrency,
        rate: args.rate,
        vip_ids,
        other_ids: args.other_ids.parse()?,
    });
    let targets = Targets {
        account_url: args.account_url.clone(),
        vip_urls: args.vip_urls.clone(),
        vip_queue: args.vip_queue.clone(),
        database_url: args.database_url.clone(),
    };
    let broker = Arc::new(Broker::connect(&args.amqp_url).await?);
    if args.cleanup {
        broker
            .delete(&args.vip_queue, args.bus_exchange.as_deref())
            .await?;
        return Ok(None);
    }
    println!(
        "loadtest {}: {:.0} s{}, {} connections, rate {}",
        args.scenario,
        plan.duration().as_secs_f64(),
        if args.faults_file.is_some() {
            " (longer if the fault schedule is not over by then)"
        } else {
            ""
        },
        plan.concurrency,
        plan.rate
            .map_or("unbounded".to_owned(), |r| format!("{r:.0}/s")),
    );
    let counters = Arc::new(Counters::for_plan(&plan));
    let rss = Arc::new(std::sync::Mutex::new(PeakRss::default()));

    let started = Instant::now();
    let started_wall = SystemTime::now();
    // The end of every phase but the last, which may go on (the end of the load is read once
    // it is over).
    let mut inner_ends = plan.phase_ends();
    inner_ends.pop();
    let published_at_boundaries = tokio::spawn(published_at_boundaries(
        inner_ends,
        targets.clone(),
        started,
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let extension = match &args.faults_file {
        Some(path) => {
            let extension = Extension::held();
            tokio::spawn(release_when_schedule_over(
                path.clone(),
                extension.clone(),
                started + plan.duration(),
                Duration::from_secs(args.extension_limit),
            ));
            extension
        }
        None => Extension::default(),
    };
    let load = tokio::spawn(load::run(
        Arc::clone(&plan),
        Arc::clone(&counters),
        extension,
    ));
    let side = tokio::spawn(side_tasks(
        Arc::clone(&counters),
        Arc::clone(&broker),
        args.vip_queue.clone(),
        args.poison_fraction,
        args.pid_files.clone(),
        Arc::clone(&rss),
        Arc::clone(&stop),
    ));
    let histogram = load.await.map_err(|e| Error::BadArgument {
        arg: "load",
        reason: e.to_string(),
    })??;
    let elapsed = started.elapsed();
    let longest_gap = counters.longest_without_vip_ok(elapsed);
    let client = reqwest::Client::new();
    let published_at_end = reconcile::account_figures(&client, &targets)
        .await
        .ok()
        .map(|f| f.published);
    // Stopped between injections, never during one: an injection cut short after the broker
    // took it would be in the queue without being counted.
    stop.store(true, Relaxed);
    let injected = side.await.unwrap_or_else(|_| POISON.load(Relaxed));

    let drain = reconcile::wait_drained(
        &client,
        &broker,
        &targets,
        Duration::from_secs(args.drain_seconds),
    )
    .await;
    // Written by the fault while the load ran; a missing or broken file fails the run, after
    // the report.
    let outage = args
        .outage_file
        .as_deref()
        .map(Outage::read)
        .transpose()
        .unwrap_or_else(|e| {
            eprintln!("loadtest: {e}");
            None
        });
    // Over by now: the load went on until it was (or until the extension's limit).
    let (faults, fault_schedule_error) = match args.faults_file.as_deref().map(Faults::read) {
        None => (None, None),
        Some(Ok(faults)) => {
            let error = match &faults.outcome {
                Some(Ok(())) => None,
                Some(Err(e)) => Some(e.clone()),
                None => Some("not over when the load ended".to_owned()),
            };
            (Some(faults), error)
        }
        Some(Err(e)) => (None, Some(e.to_string())),
    };
    let fault_records = faults.map(|f| f.records).unwrap_or_default();
    let account = reconcile::account_figures(&client, &targets).await?;
    let vip = reconcile::vip_figures(&client, &targets).await?;
    let start = chrono::DateTime::<chrono::Utc>::from(started_wall);
    // Each phase's planned length, the last one's as it ran.
    let mut lengths: Vec<Duration> = plan
        .phases
        .iter()
        .map(|p| Duration::from_secs_f64(p.seconds))
        .collect();
    if let Some(last) = lengths.last_mut() {
        let before: Duration = plan.duration() - *last;
        *last = elapsed.saturating_sub(before);
    }
    let boundaries: Vec<_> = std::iter::once(Duration::ZERO)
        .chain(lengths.iter().scan(Duration::ZERO, |end, length| {
            *end += *length;
            Some(*end)
        }))
        .filter_map(|d| chrono::TimeDelta::from_std(d).ok().map(|d| start + d))
        .collect();
    // The windows whose offers are reported: the outage's end (its first offer after), then
    // each fault, until its node was back with its queue member online.
    let outage_back = outage.and_then(Outage::back);
    let windows: Vec<Window> = outage_back
        .map(|back| Window {
            from: back,
            to: back,
        })
        .into_iter()
        .chain(fault_records.iter().filter_map(|f| {
            Some(Window {
                from: faults::instant_of(f.at_unix_ms)?,
                to: faults::instant_of(f.online_unix_ms)?,
            })
        }))
        .collect();
    let offers = reconcile::offer_figures(&targets, &boundaries, &windows).await?;
    let mut window_offers = offers.windows.iter().copied();
    let outage_first_offer = outage_back
        .and_then(|_| window_offers.next())
        .and_then(|w| w.first);
    // The counter at the start of each phase and at the end of the load.
    let published: Vec<Option<f64>> = std::iter::once(Some(0.0))
        .chain(published_at_boundaries.await.unwrap_or_default())
        .chain(std::iter::once(published_at_end))
        .collect();
    let dlq = u64::from(
        broker
            .depth(&format!("{}.dlq", args.vip_queue))
            .await?
            .unwrap_or(0),
    );
    let peak_rss_kb = match rss.lock() {
        Ok(mut peak) => {
            peak.sample(&args.pid_files);
            std::mem::take(&mut peak.kb)
        }
        Err(_) => Default::default(),
    };

    let vip_ok = counters.vip_ok.load(Relaxed);
    #[allow(clippy::cast_possible_truncation)]
    let outbox = account.outbox as i64;
    let dead_lettered_notifications = as_i64(dlq) - as_i64(injected);
    let accounted = as_i64(offers.distinct) + outbox + dead_lettered_notifications;
    // More notifications than reads answered 200 is no loss as long as reads without an answer
    // explain them: a read killed after its commit, before its response.
    let lost = (as_i64(vip_ok) - accounted).max(0);
    let unanswered_delivered = (accounted - as_i64(vip_ok)).max(0);
    let vip_in_doubt = counters.vip_in_doubt.load(Relaxed);
    let ok = counters.ok.load(Relaxed);
    #[allow(clippy::cast_precision_loss)]
    let phases = plan
        .phases
        .iter()
        .zip(&counters.ok_by_phase)
        .zip(&lengths)
        .enumerate()
        .map(|(i, ((phase, n), length))| {
            let seconds = length.as_secs_f64().max(1e-3);
            PhaseReport {
                seconds,
                vip_fraction: phase.vip_fraction,
                req_per_s: n.load(Relaxed) as f64 / seconds,
                publish_per_s: published
                    .get(i)
                    .copied()
                    .flatten()
                    .zip(published.get(i + 1).copied().flatten())
                    .map(|(from, to)| (to - from) / seconds),
                offers_per_s: offers.by_phase.get(i).copied().unwrap_or(0) as f64 / seconds,
            }
        })
        .collect();
    let publishing = drain.publishing_ended.duration_since(started);
    #[allow(clippy::cast_precision_loss)]
    let publish_per_s = account.published / publishing.as_secs_f64().max(1e-3);
    let offering = offers
        .last_offered_at
        .and_then(|last| last.signed_duration_since(start).to_std().ok())
        .unwrap_or(elapsed);
    #[allow(clippy::cast_precision_loss)]
    let offers_per_s = offers.distinct as f64 / offering.as_secs_f64().max(1e-3);
    let outage = outage.map(|o| {
        OutageReport::new(
            o,
            counters.errors_between(o.down_ms, o.back_ms),
            outage_first_offer,
        )
    });
    let faults: Vec<FaultReport> = fault_records
        .iter()
        .map(|record| {
            FaultReport::new(
                record,
                counters.errors_between(record.at_unix_ms, record.online_unix_ms),
                window_offers.next().unwrap_or_default(),
            )
        })
        .collect();
    let start_ms = load::unix_ms(started_wall);
    let longest_without_vip_200 = GapReport {
        seconds: longest_gap.length.as_secs_f64(),
        from_unix_ms: start_ms + u64::try_from(longest_gap.from.as_millis()).unwrap_or(0),
    };
    let raw_limits = args
        .raw_publish_confirm_quorum
        .zip(args.raw_consume_ack)
        .map(|(publish_confirm_quorum, consume_ack)| RawLimits {
            publish_confirm_quorum,
            consume_ack,
        });
    let mut report = Report {
        scenario: args.scenario,
        seconds: elapsed.as_secs_f64(),
        concurrency: args.concurrency,
        requests_ok: ok,
        http_errors: counters.http_errors.load(Relaxed),
        transport_errors: counters.transport_errors.load(Relaxed),
        #[allow(clippy::cast_precision_loss)]
        req_per_s: ok as f64 / elapsed.as_secs_f64(),
        phases,
        latency: Quantiles::of(&histogram),
        vip_reads_ok: vip_ok,
        vip_reads_failed: counters.vip_failed.load(Relaxed),
        vip_reads_503: counters.vip_unavailable.load(Relaxed),
        other_reads_failed: counters.other_failed.load(Relaxed),
        longest_without_vip_200,
        published_since_start: account.published,
        publish_failed_since_start: account.failed,
        buffered_since_start: account.buffered,
        outbox: account.outbox,
        commit_to_confirm_p99_ms: account.commit_to_confirm_p99.map(|s| s * 1000.0),
        consumed_since_start: vip.consumed,
        offers_made_since_start: vip.offers_made,
        duplicates_dropped_since_start: vip.duplicates_dropped,
        dead_lettered_since_start: vip.dead_lettered,
        dlq_depth: dlq,
        poison_injected: injected,
        offers_in_database: offers.total,
        distinct_offers: offers.distinct,
        duplicate_offers: offers.duplicates,
        duplicate_examples: offers.duplicate_examples,
        drained: drain.drained,
        drain_seconds: drain.took.as_secs_f64(),
        lost,
        unanswered_delivered,
        vip_in_doubt,
        end_to_end: Quantiles::of(&offers.end_to_end),
        publish_per_s,
        offers_per_s,
        vip_replicas: args.vip_urls.len(),
        peak_rss_kb,
        outage,
        faults,
        fault_schedule_error,
        against_go: Vec::new(),
        raw_limits,
        against_raw: Vec::new(),
    };
    report.against_go = compare::against_go(&report);
    if let Some(raw) = raw_limits {
        report.against_raw = compare::against_raw(&report, raw);
    }
    Ok(Some(report))
}

/// accountservice's confirmed-publish counter at the end of each phase (`None` where it could
/// not be read): each phase's publish rate. The load keeps its own time, so this follows the
/// same clock from the same start.
async fn published_at_boundaries(
    ends: Vec<Duration>,
    targets: Targets,
    started: Instant,
) -> Vec<Option<f64>> {
    let client = reqwest::Client::new();
    let mut values = Vec::with_capacity(ends.len());
    for end in ends {
        tokio::time::sleep_until((started + end).into()).await;
        let figures = reconcile::account_figures(&client, &targets).await;
        values.push(figures.ok().map(|f| f.published));
    }
    values
}

/// Ends the extension of the load once `faults_file` says the fault schedule is over, or
/// `limit` after the planned end of the load.
async fn release_when_schedule_over(
    faults_file: PathBuf,
    extension: Extension,
    planned_end: Instant,
    limit: Duration,
) {
    let mut said = false;
    loop {
        match Faults::read(&faults_file) {
            Ok(faults) if faults.outcome.is_some() => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("loadtest: {e}");
                break;
            }
        }
        let now = Instant::now();
        if now >= planned_end + limit {
            eprintln!(
                "loadtest: the fault schedule is not over {limit:?} after the planned end of \
                 the load: ending the load"
            );
            break;
        }
        if now >= planned_end && !said {
            said = true;
            println!("the load goes on until the fault schedule is over");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    extension.release();
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Garbage injected so far.
static POISON: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Every 100 ms: inject poison to keep its share of the queue's messages; every second: a
/// progress line and an RSS sample. Runs until `stop`; returns the garbage injected.
async fn side_tasks(
    counters: Arc<Counters>,
    broker: Arc<Broker>,
    queue: String,
    poison_fraction: f64,
    watched: Vec<Watched>,
    rss: Arc<std::sync::Mutex<PeakRss>>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last_ok = 0;
    let mut n = 0u64;
    let mut next_progress = 10;
    while !stop.load(Relaxed) {
        tick.tick().await;
        n += 1;
        if poison_fraction > 0.0 {
            let vip_ok = counters.vip_ok.load(Relaxed);
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let target = (vip_ok as f64 * poison_fraction / (1.0 - poison_fraction)) as u64;
            while POISON.load(Relaxed) < target {
                let i = POISON.load(Relaxed);
                match broker
                    .inject(&queue, b"{poison", &format!("poison-{i}"))
                    .await
                {
                    Ok(()) => {
                        POISON.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        eprintln!("cannot inject poison: {e}");
                        break;
                    }
                }
            }
        }
        if n == next_progress {
            next_progress += 10; // ticks of 100 ms
            let ok = counters.ok.load(Relaxed);
            println!(
                "[{:>4.0}s] {:>6} req/s  ok {:>8}  err {}/{}  vip ok {:>7}  poison {}",
                started.elapsed().as_secs_f64(),
                ok - last_ok,
                ok,
                counters.http_errors.load(Relaxed),
                counters.transport_errors.load(Relaxed),
                counters.vip_ok.load(Relaxed),
                POISON.load(Relaxed),
            );
            last_ok = ok;
            if let Ok(mut peak) = rss.lock() {
                peak.sample(&watched);
            }
        }
    }
    POISON.load(Relaxed)
}
