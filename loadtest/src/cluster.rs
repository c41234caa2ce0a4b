//! `loadtest cluster`: a RabbitMQ cluster of this machine's rabbitmq-server for one load test
//! (test-support's [`Cluster`], nodes of its own beside the machine's broker, which it never
//! touches), and the scenario's faults on it.
//!
//! 1. Starts the nodes and writes their URLs, joined with `,`, to `--urls-file` (what the
//!    services' `amqp_server_url` and the load test's `--amqp-url` take).
//! 2. On SIGUSR1 (the load started), runs the scenario's fault schedule, recording each fault
//!    in `--faults-file` as it ends, then a last line: the load test keeps its load going
//!    until that line, and reports from the file.
//! 3. On SIGTERM or SIGINT, whenever it comes, kills every node and waits until none is left
//!    (epmd lists none of them), then exits: non-zero if the schedule failed or did not end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use test_support::Cluster;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::error::Error;
use crate::faults::Recorder;
use crate::schedule::{self, ClusterScenario, say};

/// `loadtest cluster`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// What happens to the cluster once the load has started.
    #[arg(long, value_enum, default_value = "none")]
    scenario: ClusterScenario,
    /// Nodes in the cluster (3 at least for a scenario with faults).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The work queue (its leader and members are what the faults follow).
    #[arg(long)]
    vip_queue: String,
    /// How long the load is planned to last, in seconds: the first fault comes at a quarter
    /// of it.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Where to write the nodes' URLs, joined with `,`, once the cluster runs.
    #[arg(long)]
    urls_file: PathBuf,
    /// Where to record the faults (needed with a scenario that has some).
    #[arg(long)]
    faults_file: Option<PathBuf>,
}

/// SIGTERM or SIGINT: time to go.
struct Stop {
    terminate: Signal,
    interrupt: Signal,
}

impl Stop {
    fn listen() -> Result<Self, Error> {
        Ok(Self {
            terminate: listen(SignalKind::terminate(), "SIGTERM")?,
            interrupt: listen(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    async fn requested(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

fn listen(kind: SignalKind, name: &str) -> Result<Signal, Error> {
    signal(kind).map_err(|source| Error::Io {
        action: format!("listen for {name}"),
        source,
    })
}

pub async fn run(args: ClusterArgs) -> Result<(), Error> {
    let account_connection =
        common::messaging::MessagingSettings::new("", "accountservice").connection_name;
    let faults = args.scenario.faults(
        args.nodes,
        Duration::from_secs(args.seconds),
        &account_connection,
    );
    if args.nodes < args.scenario.nodes_needed() {
        return Err(Error::BadArgument {
            arg: "--nodes",
            reason: format!(
                "{} needs {} nodes at least: with fewer, the work queue loses its majority \
                 with one node",
                args.scenario.name(),
                args.scenario.nodes_needed()
            ),
        });
    }
    let faults_file = match (&args.faults_file, faults.is_empty()) {
        (Some(path), _) => Some(path.as_path()),
        (None, true) => None,
        (None, false) => {
            return Err(Error::BadArgument {
                arg: "--faults-file",
                reason: format!("{} has faults to record", args.scenario.name()),
            });
        }
    };
    // Before anything takes time: a signal must not find its default action (SIGUSR1's and
    // SIGTERM's end the process, leaving the nodes behind).
    let mut stop = Stop::listen()?;
    let mut go = listen(SignalKind::user_defined1(), "SIGUSR1")?;

    // Stopped while it boots: the cluster, dropped half-made, kills what it had started.
    let cluster = tokio::select! {
        cluster = Cluster::start(args.nodes) => cluster?,
        () = stop.requested() => return Err(stopped("the cluster was up")),
    };
    write_urls(&args.urls_file, &cluster.urls())?;
    say(&format!(
        "{} nodes running; their URLs are in {}",
        args.nodes,
        args.urls_file.display()
    ));

    let outcome = match faults_file {
        None => Ok(()),
        Some(path) => {
            let mut recorder = Recorder::create(path)?;
            let outcome = tokio::select! {
                outcome = async {
                    go.recv().await;
                    say(&format!("the load started: {}, {} faults", args.scenario.name(), faults.len()));
                    schedule::run(&cluster, &faults, &args.vip_queue, &mut recorder).await
                } => outcome,
                () = stop.requested() => Err(stopped("the fault schedule was over")),
            };
            let error = outcome.as_ref().err().map(ToString::to_string);
            if error.is_none() {
                say("fault schedule over");
            }
            // The load test holds its load until this line: written whatever happened.
            recorder.done(error)?;
            outcome
        }
    };
    // The services use the cluster until the load test is over and they are stopped, also
    // after a failed schedule (the pipeline still drains), unless the stop came already.
    if !matches!(outcome, Err(Error::Stopped { .. })) {
        stop.requested().await;
    }
    eprintln!("loadtest cluster: stopping the {} nodes", args.nodes);
    cluster.shutdown().await?;
    eprintln!("loadtest cluster: no node left");
    outcome
}

fn stopped(before: &str) -> Error {
    Error::Stopped {
        before: before.to_owned(),
    }
}

/// Writes the URLs to `path` whole or not at all (the script polls for the file).
fn write_urls(path: &Path, urls: &str) -> Result<(), Error> {
    let partial = path.with_extension("partial");
    let failed = |source| Error::Io {
        action: format!("write the cluster's URLs to {}", path.display()),
        source,
    };
    std::fs::write(&partial, urls).map_err(failed)?;
    std::fs::rename(&partial, path).map_err(failed)
}
