//! [`Cluster`] with real rabbitmq-server nodes: a quorum queue spans the three nodes, its
//! leader killed is replaced, the killed node comes back as a member, a graceful restart
//! too, and nothing of the cluster is left afterwards, after a test that panicked as well.
//!
//! Needs root (the nodes run as user rabbitmq), so `#[ignore]`d: scripts/test.sh runs them
//! when root, as in CI. With `TEST_RABBITMQ_ROOT` naming a root made by
//! scripts/ensure-rabbitmq4-root.sh, the same tests run against RabbitMQ 4.0.
//!
//! Booting nodes is slow (about 10 s a node on two cores) and so is everything else side by
//! side with it: the tests here take turns, and each boots as few nodes as it can.

use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use test_support::{Cluster, ClusterError, unique};
use tokio::sync::Mutex;

/// One cluster at a time in this binary.
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// A Raft election takes seconds; this is for a slow, busy machine.
const ELECTION_LIMIT: Duration = Duration::from_secs(60);
/// A restarted member catches up with the leader in well under this.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
#[ignore = "needs root: runs rabbitmq-server nodes as user rabbitmq (scripts/test.sh runs it when root)"]
async fn a_quorum_queue_fails_over_when_its_leader_is_killed_and_gets_it_back() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cluster = Cluster::start(3)
        .await
        .unwrap_or_else(|e| panic!("starting 3 nodes: {e}"));
    let names: Vec<String> = (0..3).map(|i| cluster.node_name(i).to_owned()).collect();
    assert_eq!(cluster.urls().split(',').count(), 3, "{}", cluster.urls());
    let queue = unique("cluster-test");

    // Declared through node 0 on the formed cluster: a member on every node.
    let client = unique("cluster-test-client");
    let connection = connect(&cluster.url(0), &client).await;
    declare_quorum_queue(&connection, &queue, false).await;
    assert_eq!(
        cluster
            .connected_node(&client)
            .await
            .expect("list_connections"),
        Some(0),
        "the client connected to node 0's port"
    );
    assert_eq!(
        cluster.members_of(&queue).await.expect("list_queues"),
        [0, 1, 2]
    );
    eventually("every member is online", CATCH_UP_LIMIT, async || {
        all_online(&cluster, &queue).await
    })
    .await;
    let leader = eventually("the queue has a leader", ELECTION_LIMIT, async || {
        cluster.leader_of(&queue).await
    })
    .await;
    connection
        .close(200, "declared".into())
        .await
        .expect("connection closed");

    // Its leader killed: another member leads, membership unchanged.
    cluster.kill(leader).await.expect("leader killed");
    let killed_at = Instant::now();
    let successor = eventually("another node leads the queue", ELECTION_LIMIT, async || {
        Ok(cluster
            .leader_of(&queue)
            .await?
            .filter(|new| *new != leader))
    })
    .await;
    eprintln!(
        "leader node {leader} killed; node {successor} leads {:.1?} later",
        killed_at.elapsed()
    );
    assert_eq!(
        cluster.members_of(&queue).await.expect("list_queues"),
        [0, 1, 2]
    );
    assert!(
        !cluster
            .online_members_of(&queue)
            .await
            .expect("list_queues")
            .contains(&leader),
        "the killed node's member is not online"
    );

    // Started again, the killed node rejoins and its member is back online.
    cluster
        .start_node(leader)
        .await
        .expect("killed node started");
    eventually(
        "the restarted node's member is online",
        CATCH_UP_LIMIT,
        async || all_online(&cluster, &queue).await,
    )
    .await;
    let connection = connect(&cluster.url(leader), &unique("cluster-test-client")).await;
    declare_quorum_queue(&connection, &queue, true).await;
    connection
        .close(200, "checked".into())
        .await
        .expect("connection closed");

    // A graceful restart of another node, as a rolling upgrade does.
    let other = (leader + 1) % 3;
    cluster.restart(other).await.expect("graceful restart");
    eventually(
        "the restarted node's member is online",
        CATCH_UP_LIMIT,
        async || all_online(&cluster, &queue).await,
    )
    .await;

    cluster.delete_queue(&queue).await.expect("queue deleted");
    assert_eq!(
        cluster.members_of(&queue).await.expect("list_queues"),
        [] as [usize; 0]
    );
    cluster.shutdown().await.expect("shutdown");
    assert_nothing_left(&names);
}

#[tokio::test]
#[ignore = "needs root: runs rabbitmq-server nodes as user rabbitmq (scripts/test.sh runs it when root)"]
async fn a_test_that_panics_leaves_no_node_behind() {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let (names_sender, names) = std::sync::mpsc::channel();
    let failed = tokio::spawn(async move {
        let cluster = Cluster::start(1)
            .await
            .unwrap_or_else(|e| panic!("starting a node: {e}"));
        names_sender
            .send(vec![cluster.node_name(0).to_owned()])
            .expect("names sent");
        panic!("this test fails on purpose, its cluster running");
    })
    .await;
    assert!(
        failed.is_err_and(|e| e.is_panic()),
        "the test body panicked"
    );
    let names = names.recv().expect("the node booted before the panic");
    assert_nothing_left(&names);
}

async fn connect(url: &str, name: &str) -> Connection {
    Connection::connect(
        url,
        ConnectionProperties::default().with_connection_name(name.into()),
    )
    .await
    .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

async fn declare_quorum_queue(connection: &Connection, queue: &str, passive: bool) {
    let channel = connection.create_channel().await.expect("channel");
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let options = QueueDeclareOptions {
        durable: true,
        passive,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(queue.into(), options, arguments)
        .await
        .unwrap_or_else(|e| panic!("declaring quorum queue {queue} (passive: {passive}): {e}"));
    channel
        .close(200, "declared".into())
        .await
        .expect("channel closed");
}

/// `Some` once all three members of `queue` are online.
async fn all_online(cluster: &Cluster, queue: &str) -> Result<Option<()>, ClusterError> {
    Ok((cluster.online_members_of(queue).await? == [0, 1, 2]).then_some(()))
}

/// Polls `check` until it gives something, panicking with `what` after `limit`. An error is
/// asked again (during a fail-over a node may fail a command) and shown if it was the last.
async fn eventually<T>(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Result<Option<T>, ClusterError>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        let last = match check().await {
            Ok(Some(found)) => return found,
            Ok(None) => String::new(),
            Err(error) => format!(" (last: {error})"),
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}{last}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Neither epmd nor any process knows the nodes any more: checked from the outside, with
/// `epmd -names` and every process's command line and environment.
fn assert_nothing_left(names: &[String]) {
    let epmd = std::process::Command::new("epmd")
        .arg("-names")
        .output()
        .expect("epmd -names runs");
    let listed = String::from_utf8_lossy(&epmd.stdout);
    for name in names {
        let short = name.split('@').next().unwrap_or(name);
        assert!(
            !listed
                .lines()
                .any(|line| line.starts_with(&format!("name {short} "))),
            "epmd still lists {short}:\n{listed}"
        );
    }
    let mut left = Vec::new();
    for process in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if !process
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        for file in ["cmdline", "environ"] {
            let Ok(bytes) = std::fs::read(process.path().join(file)) else {
                continue;
            };
            if names
                .iter()
                .any(|name| bytes.windows(name.len()).any(|w| w == name.as_bytes()))
            {
                left.push(process.path());
            }
        }
    }
    assert!(left.is_empty(), "processes of the nodes left: {left:?}");
}
