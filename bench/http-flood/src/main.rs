//! Floods a service with slow and idle HTTP clients, as issue 16 measures the servers' defence:
//! `--connections` connections opened at once (half of them send half a request head, the
//! other half nothing), held for `--hold` seconds, then closed. Prints the target's `VmRSS`
//! before, at the end of the hold and `--settle` seconds after, and the latency of
//! `GET /health` on a fresh connection during the hold and after it.
//!
//! ```text
//! cargo run --release -p http-flood -- --port 16767 --pid $(pgrep -n accountservice)
//! ```
//!
//! Raise the open-file limit first (`ulimit -n 65536`): each connection is a descriptor here.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(about = "Slow and idle HTTP clients against a service")]
struct Args {
    /// The service's port on 127.0.0.1
    #[arg(long)]
    port: u16,
    /// The service's pid, for its memory
    #[arg(long)]
    pid: u32,
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Seconds the connections are held
    #[arg(long, default_value_t = 15)]
    hold: u64,
    /// Seconds after the flood before the last memory reading
    #[arg(long, default_value_t = 10)]
    settle: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let address = format!("127.0.0.1:{}", args.port);
    println!("rss_before_kb {}", rss_kb(args.pid)?);
    let mut held = Vec::with_capacity(args.connections);
    let mut refused = 0;
    for i in 0..args.connections {
        match TcpStream::connect(&address).await {
            Ok(mut stream) => {
                if i % 2 == 0 {
                    let _ = stream
                        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                        .await;
                }
                held.push(stream);
            }
            Err(_) => refused += 1,
        }
    }
    println!("connections_opened {} refused {refused}", held.len());
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    println!("health_during_ms {}", health_ms(&address).await);
    println!("rss_during_kb {}", rss_kb(args.pid)?);
    let mut closed_by_server = 0;
    for stream in &mut held {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await
        {
            closed_by_server += 1;
        }
    }
    println!("closed_by_the_server_during_the_hold {closed_by_server}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("health_after_ms {}", health_ms(&address).await);
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    println!("rss_after_kb {}", rss_kb(args.pid)?);
    Ok(())
}

/// Milliseconds to a `/health` answer on a fresh connection (-1: none within 30 s).
async fn health_ms(address: &str) -> f64 {
    let started = Instant::now();
    let answered = tokio::time::timeout(Duration::from_secs(30), async {
        let mut stream = TcpStream::connect(address).await.ok()?;
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(())
    })
    .await;
    match answered {
        Ok(Some(())) => started.elapsed().as_secs_f64() * 1000.0,
        _ => -1.0,
    }
}

fn rss_kb(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("no process {pid}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .context("VmRSS")
}
