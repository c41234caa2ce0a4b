//! The cluster scenarios: which node each fault strikes, how, and when, run against a
//! [`Cluster`] while the load goes on. Every fault ends with its node back in the cluster and
//! its member of the work queue online: the next one never takes a second node from a quorum
//! of three.

use std::time::Duration;

use test_support::Cluster;

use crate::error::Error;
use crate::faults::{Action, FaultRecord, Recorder, now_ms};

/// What happens to the cluster while the load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClusterScenario {
    /// Nothing: any other scenario, on a cluster instead of one broker.
    None,
    /// The node leading the work queue SIGKILLed, started again after a pause; then the node
    /// accountservice is connected to (wherever it went meanwhile), likewise.
    NodeLoss,
    /// Every node in turn stopped gracefully and started again at once, as a rolling upgrade
    /// does, the next once the last one's queue member is online.
    RollingRestart,
}

/// Which node a fault strikes, chosen when it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The node leading the work queue.
    QueueLeader,
    /// The node that the client connection of this name is on (`{application}@{hostname}`).
    ConnectionOf(String),
    Node(usize),
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// After the previous fault is over (the start of the load, for the first).
    pub pause: Duration,
    pub target: Target,
    pub action: Action,
    /// For a kill: how long the node stays down before it is started again (booting takes
    /// some 10 s more).
    pub down_for: Duration,
}

/// How long the node of a node-loss fault stays down before it is started again.
const DOWN_FOR: Duration = Duration::from_secs(3);
/// Between one fault's node back with its member online and the next fault: the pipeline's
/// recovery from one is seen apart from the next.
const BETWEEN: Duration = Duration::from_secs(2);
/// How long a leader election, a client's reconnection or a restarted member's catching up
/// may take before the schedule gives up, on a busy two-core machine.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(250);

impl ClusterScenario {
    /// The fault schedule on a cluster of `nodes`, for a load planned to last `load`:
    /// the first fault at a quarter of it. `account_connection`: accountservice's connection
    /// name.
    pub fn faults(self, nodes: usize, load: Duration, account_connection: &str) -> Vec<Fault> {
        let first = load / 4;
        match self {
            Self::None => Vec::new(),
            Self::NodeLoss => vec![
                Fault {
                    pause: first,
                    target: Target::QueueLeader,
                    action: Action::Kill,
                    down_for: DOWN_FOR,
                },
                Fault {
                    pause: BETWEEN,
                    target: Target::ConnectionOf(account_connection.to_owned()),
                    action: Action::Kill,
                    down_for: DOWN_FOR,
                },
            ],
            Self::RollingRestart => (0..nodes)
                .map(|i| Fault {
                    pause: if i == 0 { first } else { BETWEEN },
                    target: Target::Node(i),
                    action: Action::Restart,
                    down_for: Duration::ZERO,
                })
                .collect(),
        }
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::NodeLoss => "node-loss",
            Self::RollingRestart => "rolling-restart",
        }
    }

    /// The nodes the scenario needs: a quorum queue keeps its majority with one node down
    /// only from three.
    pub fn nodes_needed(self) -> usize {
        match self {
            Self::None => 1,
            Self::NodeLoss | Self::RollingRestart => 3,
        }
    }
}

/// Runs `faults` in order on `cluster`, recording each as it ends; `queue`: the work queue.
pub async fn run(
    cluster: &Cluster,
    faults: &[Fault],
    queue: &str,
    recorder: &mut Recorder,
) -> Result<(), Error> {
    for fault in faults {
        tokio::time::sleep(fault.pause).await;
        let record = inflict(cluster, fault, queue).await?;
        recorder.fault(record)?;
    }
    Ok(())
}

async fn inflict(cluster: &Cluster, fault: &Fault, queue: &str) -> Result<FaultRecord, Error> {
    let (node, chosen_as) = choose(cluster, &fault.target, queue).await?;
    let name = cluster.node_name(node).to_owned();
    let at_unix_ms = now_ms();
    match fault.action {
        Action::Kill => {
            say(&format!("SIGKILL node {node} {name} ({chosen_as})"));
            cluster.kill(node).await?;
        }
        Action::Restart => {
            say(&format!("stopping node {node} {name} ({chosen_as})"));
            cluster.stop_node(node).await?;
        }
    }
    let gone_unix_ms = now_ms();
    tokio::time::sleep(fault.down_for).await;
    say(&format!("starting node {node} {name} again"));
    cluster.start_node(node).await?;
    let back_unix_ms = now_ms();
    eventually(
        &format!("node {node}'s member of {queue} is online again"),
        async || {
            Ok(cluster
                .online_members_of(queue)
                .await?
                .contains(&node)
                .then_some(()))
        },
    )
    .await?;
    let online_unix_ms = now_ms();
    say(&format!(
        "node {node} back in {:.1} s, its member of {queue} online in {:.1} s",
        seconds(back_unix_ms - at_unix_ms),
        seconds(online_unix_ms - at_unix_ms)
    ));
    Ok(FaultRecord {
        action: fault.action,
        chosen_as,
        node,
        node_name: name,
        at_unix_ms,
        gone_unix_ms,
        back_unix_ms,
        online_unix_ms,
    })
}

/// The node `target` names now, and why it was chosen.
async fn choose(cluster: &Cluster, target: &Target, queue: &str) -> Result<(usize, String), Error> {
    match target {
        Target::Node(i) => Ok((*i, format!("node {i} of the rolling restart"))),
        Target::QueueLeader => {
            let leader = eventually(&format!("{queue} has a leader"), async || {
                Ok(cluster.leader_of(queue).await?)
            })
            .await?;
            Ok((leader, format!("leading {queue}")))
        }
        Target::ConnectionOf(name) => {
            let node = eventually(&format!("{name} is connected"), async || {
                Ok(cluster.connected_node(name).await?)
            })
            .await?;
            Ok((node, format!("{name} is connected to it")))
        }
    }
}

/// Asks `probe` every [`POLL`] until it has an answer, for at most [`SETTLE_LIMIT`]; an error
/// of the cluster ends the wait at once.
async fn eventually<T>(
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<Option<T>, Error>,
) -> Result<T, Error> {
    let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
    loop {
        if let Some(found) = probe().await? {
            return Ok(found);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Schedule(format!(
                "gave up waiting {SETTLE_LIMIT:?} until {what}"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// A progress line, in the format of scripts/loadtest.sh's steps.
pub fn say(what: &str) {
    println!(
        "==> {} cluster: {what}",
        chrono::Local::now().format("%H:%M:%S%.3f")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_loss_strikes_the_leader_then_accountservices_node() {
        let faults = ClusterScenario::NodeLoss.faults(3, Duration::from_secs(20), "a@h");
        let targets: Vec<_> = faults.iter().map(|f| f.target.clone()).collect();
        assert_eq!(
            targets,
            [Target::QueueLeader, Target::ConnectionOf("a@h".into())]
        );
        assert!(faults.iter().all(|f| f.action == Action::Kill));
        assert_eq!(faults[0].pause, Duration::from_secs(5));
    }

    #[test]
    fn a_rolling_restart_restarts_every_node_once_in_turn() {
        let faults = ClusterScenario::RollingRestart.faults(3, Duration::from_secs(20), "a@h");
        let targets: Vec<_> = faults.iter().map(|f| f.target.clone()).collect();
        assert_eq!(targets, [Target::Node(0), Target::Node(1), Target::Node(2)]);
        assert!(faults.iter().all(|f| f.action == Action::Restart));
        assert!(
            ClusterScenario::None
                .faults(3, Duration::from_secs(20), "a@h")
                .is_empty()
        );
    }
}
