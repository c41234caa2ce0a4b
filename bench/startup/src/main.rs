//! Start to first `/health` 200 of the vipservice and accountservice binaries, as
//! `scripts/bench-startup.sh` runs it.
//!
//! Each service gets a throw-away copy of the repository's `config-repo/` with a profile of
//! its own (`startbench`: a port, a unique `vip_queue` and config bus, stores in a temp dir,
//! an absent quotes service) and is started `--runs` + 1 times, one after the other: the first
//! start on fresh stores (the queue declared anew too), the others on what the first left.
//! Each start is timed from the spawn to the first `/health` 200: a request is sent as soon as
//! the port accepts connections (the service binds before it connects to the broker, so the
//! request waits in the backlog until it is served), so no poll interval is added to the
//! figure. The service is then stopped with SIGTERM and must exit with 0.
//!
//! Prints a `name value` line per figure. The queue (with its `.dlq`/`.dlx`) and the bus
//! exchange are deleted at the end, also after a failure.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use test_support::{Cleanup, amqp_url, unique};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

/// How long one start or one stop may take before the run is declared stuck.
const PATIENCE: Duration = Duration::from_secs(30);
/// The wait between two connection attempts while the port is not bound yet.
const CONNECT_EVERY: Duration = Duration::from_micros(500);

#[derive(Parser)]
#[command(about = "Start to first /health 200 of both services")]
struct Args {
    /// The folder holding the vipservice and accountservice binaries
    #[arg(long)]
    bin_dir: PathBuf,
    /// The repository's config-repo, copied for the runs
    #[arg(long, default_value = "config-repo")]
    config_repo: PathBuf,
    /// Starts on existing stores per service (after the one on fresh stores)
    #[arg(long, default_value_t = 11)]
    runs: usize,
    /// vipservice's port; accountservice's is the next one
    #[arg(long, default_value_t = 17868)]
    port: u16,
    /// Where the services' logs go (default: the temp dir, removed at the end)
    #[arg(long)]
    log_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let cleanup = Cleanup::new();
    let queue = cleanup.work_queue(unique("vip_queue.startbench"));
    let bus = cleanup.exchange(unique("springCloudBus.startbench"));
    let dir = tempfile::tempdir().context("temp dir")?;
    let repo = dir.path().join("config-repo");
    copy_dir(&args.config_repo, &repo)
        .with_context(|| format!("copying {}", args.config_repo.display()))?;
    let logs = args
        .log_dir
        .clone()
        .unwrap_or_else(|| dir.path().join("logs"));
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let common = format!(
        "amqp_server_url: {}\nconfig_event_bus: {bus}\nvip_queue: {queue}\nlog_level: info\n",
        amqp_url()
    );
    let vip_port = args.port;
    let account_port = args.port + 1;
    let stores = dir.path().display();
    write(&repo.join("application-startbench.yml"), &common)?;
    write(
        &repo.join("vipservice-startbench.yml"),
        &format!(
            "server_port: {vip_port}\nserver_name: vipservice startbench\n\
             offers:\n  database_url: sqlite://{stores}/vipservice.db?mode=rwc\n"
        ),
    )?;
    write(
        &repo.join("accountservice-startbench.yml"),
        &format!(
            "server_port: {account_port}\nserver_name: accountservice startbench\n\
             store:\n  path: {stores}/accountservice.redb\n\
             outbox:\n  database_url: sqlite://{stores}/accountservice-outbox.db?mode=rwc\n\
             quotes:\n  url: http://127.0.0.1:1/api/quote?strength=4\n"
        ),
    )?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .context("HTTP client")?;
    for (service, port) in [("vipservice", vip_port), ("accountservice", account_port)] {
        let binary = args.bin_dir.join(service);
        ensure!(
            binary.is_file(),
            "no {service} binary in {}",
            args.bin_dir.display()
        );
        let mut existing = Vec::with_capacity(args.runs);
        for run in 0..=args.runs {
            let log = logs.join(format!("{service}-{run}.log"));
            let start = Start {
                binary: &binary,
                repo: &repo,
                port,
                log: &log,
                http: &http,
            };
            let millis = start
                .time()
                .await
                .with_context(|| format!("{service}, start {run} (its log: {})", log.display()))?;
            if run == 0 {
                println!("{service}_fresh_start_to_health_ms {millis:.1}");
            } else {
                existing.push(millis);
            }
        }
        existing.sort_by(f64::total_cmp);
        if let (Some(min), Some(max)) = (existing.first(), existing.last()) {
            println!(
                "{service}_start_to_health_ms_median {:.1}",
                existing[existing.len() / 2]
            );
            println!("{service}_start_to_health_ms_min {min:.1}");
            println!("{service}_start_to_health_ms_max {max:.1}");
        }
    }
    drop(cleanup);
    Ok(())
}

/// One start of one binary.
struct Start<'a> {
    binary: &'a Path,
    repo: &'a Path,
    port: u16,
    log: &'a Path,
    http: &'a reqwest::Client,
}

impl Start<'_> {
    /// Milliseconds from the spawn to the first `/health` 200; stops the service after.
    async fn time(&self) -> Result<f64> {
        let log = std::fs::File::create(self.log).context("log file")?;
        let err = log.try_clone().context("log file")?;
        let spawned = Instant::now();
        let mut child = Command::new(self.binary)
            .arg("--config-repo")
            .arg(self.repo)
            .args(["--profile", "startbench"])
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        let healthy = timeout(PATIENCE, self.first_health(&mut child)).await;
        let elapsed = spawned.elapsed();
        let outcome = match healthy {
            Ok(Ok(())) => Ok(elapsed.as_secs_f64() * 1000.0),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(anyhow::anyhow!("no /health 200 within {PATIENCE:?}")),
        };
        stop(&mut child).await?;
        outcome
    }

    async fn first_health(&self, child: &mut Child) -> Result<()> {
        let url = format!("http://127.0.0.1:{}/health", self.port);
        loop {
            if let Some(exit) = child.try_wait()? {
                bail!("exited with {exit} before it was healthy");
            }
            match self.http.get(&url).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(_) => {}
                Err(error) if error.is_connect() => {}
                Err(error) => return Err(error).context("GET /health"),
            }
            sleep(CONNECT_EVERY).await;
        }
    }
}

/// SIGTERM, then checks that it exits with 0 within [`PATIENCE`] (SIGKILL otherwise).
async fn stop(child: &mut Child) -> Result<()> {
    let pid = child.id().context("the service has a pid")?;
    let termed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .context("running kill")?;
    ensure!(termed.success(), "could not SIGTERM {pid}");
    match timeout(PATIENCE, child.wait()).await {
        Ok(exit) => {
            let exit = exit?;
            ensure!(exit.success(), "{pid} exited with {exit} after SIGTERM");
            Ok(())
        }
        Err(_) => {
            child.kill().await?;
            bail!("{pid} ignored SIGTERM for {PATIENCE:?}; killed");
        }
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}
