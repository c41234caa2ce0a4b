//! The offer writer alone, without the broker: what one notification costs the store.
//!
//! ```text
//! cargo run --release -p vipservice --example writer_bench -- -n 100000 --group 100
//! ```
//!
//! Simulates the consumer's steady state on a fresh store in a temp dir: `--group` deliveries
//! are claimed concurrently (message ids are UUIDv7, as accountservice's), then the ledger
//! entry that orders them is applied while the next group is claimed, until `-n`
//! notifications are offers. Prints `name value` lines: notifications per
//! second of wall time and the writer process's CPU time per notification. Broker-free, so it
//! separates the store's cost from the messaging's when the drain benchmark moves.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Parser;
use common::notification::VipNotification;
use tokio::task::JoinSet;
use uuid::Uuid;
use vipservice::offers::{Applying, OfferDb, OfferRule, OfferWriter, Ordered, Outcome};

#[derive(Parser)]
#[command(about = "Claims and ledger applies per second of the offer writer, broker-free")]
struct Args {
    /// Notifications to turn into offers
    #[arg(short = 'n', long, default_value_t = 100_000)]
    count: u64,
    /// Claims in flight at once (the consumer's prefetch bounds them)
    #[arg(long, default_value_t = 100)]
    group: u64,
    /// Distinct accounts the notifications are spread over
    #[arg(long, default_value_t = 1_000)]
    accounts: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir().context("a temp dir")?;
    let db = Arc::new(OfferDb::open(dir.path().join("offers.redb"))?);
    let replica = db.replica().to_owned();
    let writer = Arc::new(OfferWriter::start(
        Arc::clone(&db),
        OfferRule::default(),
        vipservice::offers::DEFAULT_MAX_BATCH,
    )?);
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    let mut pending_apply: Option<Applying> = None;
    let mut made = 0;
    for (offset, first) in (0..args.count).step_by(args.group as usize).enumerate() {
        let ids: Vec<String> = (first..(first + args.group).min(args.count))
            .map(|_| Uuid::now_v7().to_string())
            .collect();
        let mut claims = JoinSet::new();
        for (i, id) in ids.iter().enumerate() {
            let (writer, id) = (Arc::clone(&writer), id.clone());
            let account = format!("bench{:04}", (first + i as u64) % args.accounts);
            claims.spawn(async move { writer.record(id, VipNotification::now(account)).await });
        }
        while let Some(claimed) = claims.join_next().await {
            ensure!(
                claimed?? == Outcome::Claimed,
                "a fresh id came back a duplicate"
            );
        }
        if let Some(applying) = pending_apply.take() {
            made += applying.await??.offers;
        }
        let entry = Ordered {
            replica: replica.clone(),
            message_ids: ids,
            offset: offset as u64,
        };
        pending_apply = Some(writer.apply(entry).await?);
    }
    if let Some(applying) = pending_apply {
        made += applying.await??.offers;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    ensure!(
        made == args.count,
        "{made} offers for {} notifications",
        args.count
    );
    println!(
        "writer_notifications_per_s {:.0}",
        args.count as f64 / seconds
    );
    println!(
        "writer_cpu_us_per_notification {:.1}",
        cpu * 1e6 / args.count as f64
    );
    println!("writer_commits {}", db.committed_batches());
    Ok(())
}

/// User + system CPU time of this process so far, from `/proc/self/stat`.
fn cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("/proc/self/stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("/proc/self/stat has a command name")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11..13)
        .context("/proc/self/stat has utime and stime")?
        .iter()
        .map(|t| t.parse::<f64>())
        .sum::<Result<f64, _>>()?;
    // The kernel's USER_HZ is 100 on every Linux target Rust supports here.
    Ok(ticks / 100.0)
}
