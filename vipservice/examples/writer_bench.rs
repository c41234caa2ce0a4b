//! The offer writer alone, without the broker: how many notifications per second one replica
//! records into the offers database, and the CPU each costs. Prints `name value` lines.
//!
//! ```text
//! cargo run --release -p vipservice --example writer_bench -- --database-url 'sqlite:///tmp/w.db?mode=rwc'
//! ```

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use common::notification::VipNotification;
use vipservice::offers::{DEFAULT_MAX_BATCH, OfferDb, OfferRule, OfferWriter};
use vipservice::settings::OffersDatabaseSettings;

#[derive(Parser)]
#[command(about = "Notifications per second the offer writer records, broker left out")]
struct Args {
    /// The offers database (a fresh one: the bench's message ids are fixed)
    #[arg(long)]
    database_url: String,
    /// Notifications recorded
    #[arg(short = 'n', long, default_value_t = 100_000)]
    count: usize,
    /// Notifications in flight at once (the consumer's prefetch)
    #[arg(long, default_value_t = 1000)]
    in_flight: usize,
    /// Account ids the notifications are spread over
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let settings = OffersDatabaseSettings::at(args.database_url.clone());
    let db = Arc::new(OfferDb::connect(&settings).await.context("the database")?);
    let writer = Arc::new(OfferWriter::start(
        db,
        OfferRule::default(),
        DEFAULT_MAX_BATCH,
    ));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let slots = Arc::new(tokio::sync::Semaphore::new(args.in_flight));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.count {
        let permit = slots.clone().acquire_owned().await?;
        let writer = writer.clone();
        let account = (10_000 + i % args.accounts).to_string();
        tasks.spawn(async move {
            let result = writer
                .record(format!("bench-{i}"), VipNotification::now(account))
                .await;
            drop(permit);
            result
        });
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    #[allow(clippy::cast_precision_loss)]
    let count = args.count as f64;
    println!("notifications_per_s {:.0}", count / elapsed);
    println!("cpu_us_per_notification {:.1}", cpu / count * 1e6);
    Ok(())
}

/// User and system CPU time of this process so far (utime + stime of /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields after the command name: state is 0, utime 11, stime 12; 100 ticks per second.
    (ticks(11) + ticks(12)) / 100.0
}
