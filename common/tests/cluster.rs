//! `common::messaging` on a real three-node RabbitMQ cluster of the tests' own
//! (`test_support::Cluster`: nodes of this machine's rabbitmq-server on ports of their own,
//! or of RabbitMQ 4.0 with `TEST_RABBITMQ_ROOT`), given to the client as the list of its
//! nodes. While messages flow, the node leading the queue is SIGKILLed, then the publisher's
//! node, then the consumer's: no confirmed publish is lost, every message is consumed (once,
//! after dropping redeliveries by message id), the bus subscription follows the consumer to
//! its new node, a new client skips a dead node, and a publish whose queue has lost its
//! majority fails in bounded time instead of hanging.
//!
//! Needs root (the nodes run as user rabbitmq), so `#[ignore]`d: scripts/test.sh runs it when
//! root, as CI does. One cluster for the whole sequence: each boot costs about 10 s a node.

#[path = "messaging/helpers.rs"]
#[allow(dead_code, unused_imports)]
mod helpers;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::messaging::{
    AmqpMessaging, Compat, ExchangeSpec, HandlerError, HandlerFn, IncomingMessage, Messaging,
    MessagingError, QueueSpec, QueueType,
};
use serde_json::json;
use test_support::{Cluster, unique};
use tokio::sync::watch;
use tokio::task::JoinSet;

use helpers::{init_logging, message, receive, recorder, settings};

/// An election, a reconnection or a restarted member catching up, on a busy two-core machine.
const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test]
#[ignore = "needs root: runs rabbitmq-server nodes as user rabbitmq (scripts/test.sh runs it when root)"]
async fn nothing_confirmed_is_lost_when_nodes_die_under_load() {
    let cluster = Cluster::start(3)
        .await
        .unwrap_or_else(|e| panic!("starting 3 nodes: {e}"));
    let queue = QueueSpec::work_queue(unique("cluster-work"), QueueType::Quorum);
    let bus = ExchangeSpec::topic(unique("cluster-bus"));
    let consumer = client(&cluster, "cluster-consumer").await;

    let consumed = Consumed::default();
    consumer
        .client
        .subscribe_to_queue(&queue, "test", consumed.handler())
        .await
        .expect("subscribes to the work queue");
    let (bus_handler, mut events) = recorder();
    consumer
        .client
        .subscribe(&bus, "#", "anonymous", bus_handler)
        .await
        .expect("subscribes to the bus");

    // The publisher on the node leading the queue: when that node dies, the publisher's first
    // publishes on its new node come during the election (RabbitMQ 3.10 then nacked every
    // later publish of that channel, and the client must publish on a new one).
    let leader = eventually_some("the queue has a leader", async || {
        cluster.leader_of(&queue.name).await.ok().flatten()
    })
    .await;
    let publisher = client_on(&cluster, "cluster-publisher", leader).await;
    let (stop, publishing) = watch::channel(false);
    let load = publish_until_stopped(&publisher.client, &queue, publishing);
    wait_for(&consumed, 200).await;

    // The node leading the queue dies while messages flow; another member takes over.
    cluster.kill(leader).await.expect("leader killed");
    let killed = Instant::now();
    let successor = eventually_some("another node leads the queue", async || {
        cluster
            .leader_of(&queue.name)
            .await
            .ok()
            .flatten()
            .filter(|node| *node != leader)
    })
    .await;
    eprintln!(
        "leader {leader} killed: node {successor} leads after {:.1?}",
        killed.elapsed()
    );
    let before = consumed.count();
    wait_for(&consumed, before + 200).await;

    // A new client lists the dead node among the live ones and connects all the same.
    for _ in 0..3 {
        let newcomer = client(&cluster, "cluster-newcomer").await;
        let node = newcomer.node(&cluster).await;
        assert_ne!(node, leader, "connected to the killed node");
        newcomer.client.close().await.expect("closes");
    }
    restart(&cluster, leader, &queue).await;

    // The publisher's node dies, then the consumer's: each client moves to another node.
    for who in [&publisher, &consumer] {
        let node = who.node(&cluster).await;
        cluster.kill(node).await.expect("node killed");
        let moved = eventually_some("the client is on another node", async || {
            cluster
                .connected_node(&who.name)
                .await
                .ok()
                .flatten()
                .filter(|now| *now != node)
        })
        .await;
        eprintln!("{}: node {node} killed, now on node {moved}", who.name);
        let before = consumed.count();
        wait_for(&consumed, before + 200).await;
        restart(&cluster, node, &queue).await;
    }

    // The bus subscription is the consumer's own queue: it followed the consumer.
    publisher
        .client
        .publish(&bus, "anyone", message(&json!({ "event": "refresh" })))
        .await
        .expect("bus event published");
    let event = receive(&mut events, 1).await;
    assert_eq!(event[0].routing_key, "anyone");

    stop.send_replace(true);
    let confirmed = load.await;
    eprintln!("{} publishes confirmed", confirmed.len());
    eventually_some("every confirmed publish is consumed", async || {
        confirmed.is_subset(&consumed.ids()).then_some(())
    })
    .await;
    eprintln!(
        "{} deliveries for {} messages (redeliveries dropped by message id)",
        consumed.deliveries(),
        consumed.count()
    );

    // Two nodes of three gone: no majority, so no confirm. The publish fails in bounded
    // time; it never hangs.
    let survivor = publisher.node(&cluster).await;
    for node in (0..3).filter(|node| *node != survivor) {
        cluster.kill(node).await.expect("node killed");
    }
    let started = Instant::now();
    let outcome = publisher
        .client
        .publish_on_queue(&queue, message(&json!({ "quorum": "lost" })))
        .await;
    assert!(
        matches!(
            outcome,
            Err(MessagingError::ConfirmTimeout { .. } | MessagingError::Unavailable { .. })
        ),
        "{outcome:?}"
    );
    eprintln!(
        "without a majority the publish failed after {:.1?}: {outcome:?}",
        started.elapsed()
    );

    publisher.client.close().await.expect("publisher closes");
    consumer.client.close().await.expect("consumer closes");
    cluster.shutdown().await.expect("cluster shut down");
}

/// A client of the cluster whose connection the nodes list under `name`.
struct Named {
    name: String,
    client: AmqpMessaging,
}

impl Named {
    async fn node(&self, cluster: &Cluster) -> usize {
        eventually_some("the client's connection is listed", async || {
            cluster.connected_node(&self.name).await.ok().flatten()
        })
        .await
    }
}

async fn client(cluster: &Cluster, prefix: &str) -> Named {
    init_logging();
    let name = unique(prefix);
    let mut settings = settings(&cluster.urls());
    settings.connection_name = name.clone();
    settings.connect_timeout = LIMIT;
    settings.confirm_timeout = Duration::from_secs(3);
    let client = AmqpMessaging::connect(settings)
        .await
        .unwrap_or_else(|e| panic!("{name} connects to the cluster: {e}"));
    Named { name, client }
}

/// A client connected to node `node`: the nodes' order is shuffled, so a few tries find it.
async fn client_on(cluster: &Cluster, prefix: &str, node: usize) -> Named {
    for _ in 0..30 {
        let candidate = client(cluster, prefix).await;
        if candidate.node(cluster).await == node {
            return candidate;
        }
        candidate.client.close().await.expect("closes");
    }
    panic!("no client of 30 connected to node {node}");
}

/// Publishes from 8 tasks until `stop`; returns the ids of the publishes the broker confirmed.
fn publish_until_stopped(
    client: &AmqpMessaging,
    queue: &QueueSpec,
    stop: watch::Receiver<bool>,
) -> impl Future<Output = HashSet<String>> + use<> {
    let mut tasks = JoinSet::new();
    for task in 0..8 {
        let (client, queue, stop) = (client.clone(), queue.clone(), stop.clone());
        tasks.spawn(async move {
            let mut confirmed = Vec::new();
            let mut n = 0u64;
            while !*stop.borrow() {
                n += 1;
                let message = message(&json!({ "task": task, "n": n }));
                let id = message.message_id.clone();
                match client.publish_on_queue(&queue, message).await {
                    Ok(()) => confirmed.push(id),
                    Err(error) => eprintln!("publish {id} failed: {error}"),
                }
            }
            confirmed
        });
    }
    async move {
        let mut all = HashSet::new();
        while let Some(done) = tasks.join_next().await {
            all.extend(done.expect("a publishing task panicked"));
        }
        all
    }
}

/// Message ids consumed, each counted once however often it was delivered.
#[derive(Clone, Default)]
struct Consumed(Arc<Mutex<(HashSet<String>, usize)>>);

impl Consumed {
    fn handler(&self) -> Arc<dyn common::messaging::Handler> {
        let seen = self.clone();
        Arc::new(HandlerFn(move |message: IncomingMessage| {
            let mut state = seen.0.lock().expect("consumed");
            state.0.insert(message.message_id.unwrap_or_default());
            state.1 += 1;
            std::future::ready(Ok::<(), HandlerError>(()))
        }))
    }

    fn ids(&self) -> HashSet<String> {
        self.0.lock().expect("consumed").0.clone()
    }

    fn count(&self) -> usize {
        self.0.lock().expect("consumed").0.len()
    }

    fn deliveries(&self) -> usize {
        self.0.lock().expect("consumed").1
    }
}

async fn wait_for(consumed: &Consumed, count: usize) {
    eventually_some(&format!("{count} messages are consumed"), async || {
        (consumed.count() >= count).then_some(())
    })
    .await;
}

/// Starts node `i` again and waits until its member of `queue` is back online.
async fn restart(cluster: &Cluster, i: usize, queue: &QueueSpec) {
    cluster.start_node(i).await.expect("node started again");
    eventually_some("the restarted node's member is online", async || {
        let online = cluster.online_members_of(&queue.name).await.ok()?;
        online.contains(&i).then_some(())
    })
    .await;
}

/// `rabbitmqctl ARGS` on node 0, panicking with the command if it fails.
async fn rabbitmqctl(cluster: &Cluster, args: &[&str]) -> String {
    cluster
        .rabbitmqctl(0, args)
        .await
        .unwrap_or_else(|e| panic!("rabbitmqctl {args:?}: {e}"))
}

/// Polls `check` until it gives something, panicking with `what` after `LIMIT`.
async fn eventually_some<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {LIMIT:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// RabbitMQ 4.3 refuses a queue that is neither durable nor exclusive (the Go original's
/// `vip_queue`, which the go-p9 mode declares) by closing the connection; 4.0 does the same
/// when its `deprecated_features.permit.transient_nonexcl_queues` is false. The services then
/// stop with an error naming the queue and that setting, and do not retry it as an outage.
#[tokio::test]
#[ignore = "needs root: runs rabbitmq-server nodes as user rabbitmq (scripts/test.sh runs it when root)"]
async fn a_broker_refusing_the_go_queue_names_the_queue_and_the_setting() {
    if std::env::var_os("TEST_RABBITMQ_ROOT").is_none() {
        eprintln!("RabbitMQ 3.10 has no deprecated features: this runs with TEST_RABBITMQ_ROOT");
        return;
    }
    let cluster = Cluster::start_with_config(
        1,
        &["deprecated_features.permit.transient_nonexcl_queues = false"],
    )
    .await
    .unwrap_or_else(|e| panic!("starting a node: {e}"));
    let queue =
        QueueSpec::work_queue(unique("go-queue"), QueueType::Quorum).with_compat(Compat::GoP9);
    let named = client(&cluster, "go-p9").await;

    let started = Instant::now();
    let subscribed = named
        .client
        .subscribe_to_queue(&queue, "test", Consumed::default().handler())
        .await;
    let published = named
        .client
        .publish_on_queue(&queue, message(&json!({ "go": "p9" })))
        .await;
    for outcome in [subscribed.map(drop), published] {
        let Err(error) = outcome else {
            panic!("the broker accepted the Go queue");
        };
        assert!(
            matches!(&error, MessagingError::TransientQueueRefused { queue: named, .. } if *named == queue.name),
            "{error}"
        );
        let text = error.to_string();
        assert!(
            text.contains("deprecated_features.permit.transient_nonexcl_queues = true"),
            "{text}"
        );
    }
    assert!(
        started.elapsed() < LIMIT,
        "refused only after {:?}",
        started.elapsed()
    );
    named.client.close().await.expect("closes");
    cluster.shutdown().await.expect("node shut down");
}

/// `amqp.password_file` is read at each connection attempt: a password rotated on the broker
/// and in the file is used by the next reconnection, with no restart; a missing file or a
/// wrong password is an error naming the setting, never the password.
#[tokio::test]
#[ignore = "needs root: runs rabbitmq-server nodes as user rabbitmq (scripts/test.sh runs it when root)"]
async fn a_rotated_password_is_read_from_its_file_at_the_next_connection() {
    let cluster = Cluster::start(1)
        .await
        .unwrap_or_else(|e| panic!("starting a node: {e}"));
    let ctl = async |args: &[&str]| rabbitmqctl(&cluster, args).await;
    let user = unique("rotated");
    ctl(&["add_user", &user, "first-secret"]).await;
    ctl(&["set_permissions", "-p", "/", &user, ".*", ".*", ".*"]).await;
    let dir = tempfile::tempdir().expect("a folder");
    let file = dir.path().join("amqp_password");
    std::fs::write(&file, "first-secret\n").expect("password written");
    let url = cluster.url(0).replacen("guest:guest", &user, 1);
    let settings_with = |path: &std::path::Path| {
        let mut settings = settings(&url);
        settings.password_file = Some(path.to_owned());
        settings.connect_timeout = Duration::from_secs(2);
        settings
    };
    let queue = QueueSpec::work_queue(unique("rotation"), QueueType::Quorum);

    let client = AmqpMessaging::connect(settings_with(&file))
        .await
        .expect("connects with the file's password");
    client
        .publish_on_queue(&queue, message(&json!({ "password": 1 })))
        .await
        .expect("published with the first password");

    // Rotated on the broker and in the file; the open connection goes on, the next one uses
    // the new password.
    ctl(&["change_password", &user, "second-secret"]).await;
    std::fs::write(&file, "second-secret\n").expect("password rotated");
    let mut status = client.status();
    ctl(&["close_all_connections", "password rotated"]).await;
    status
        .wait_for(|s| !s.is_connected())
        .await
        .expect("status published");
    tokio::time::timeout(LIMIT, status.wait_for(|s| s.is_connected()))
        .await
        .expect("reconnected with the rotated password")
        .expect("status published");
    client
        .publish_on_queue(&queue, message(&json!({ "password": 2 })))
        .await
        .expect("published with the second password");
    client.close().await.expect("closes");

    std::fs::write(&file, "first-secret\n").expect("old password written");
    let Err(error) = AmqpMessaging::connect(settings_with(&file)).await else {
        panic!("the old password was accepted");
    };
    assert!(
        matches!(error, MessagingError::Authentication { .. }),
        "{error}"
    );
    let missing = dir.path().join("absent");
    let Err(error) = AmqpMessaging::connect(settings_with(&missing)).await else {
        panic!("connected without a password file");
    };
    let text = error.to_string();
    assert!(
        matches!(error, MessagingError::PasswordFile { .. })
            && text.contains("absent")
            && text.contains("amqp.password_file"),
        "{text}"
    );
    for text in [text, format!("{error:?}")] {
        assert!(!text.contains("secret"), "{text}");
    }
    cluster.shutdown().await.expect("node shut down");
}

/// A user without the permission an operation needs gets an error naming the operation, the
/// permission, the resource and how to grant it, at once: never a silent discard, never a
/// retry loop.
#[tokio::test]
#[ignore = "needs root: runs rabbitmq-server nodes as user rabbitmq (scripts/test.sh runs it when root)"]
async fn a_missing_permission_is_named_with_the_resource_and_how_to_grant_it() {
    let cluster = Cluster::start(1)
        .await
        .unwrap_or_else(|e| panic!("starting a node: {e}"));
    let ctl = async |args: &[&str]| rabbitmqctl(&cluster, args).await;
    let queue = QueueSpec::work_queue(unique("guarded"), QueueType::Quorum);
    // `guest` declares the queue; each user below lacks one permission on it.
    let owner = AmqpMessaging::connect(settings(&cluster.url(0)))
        .await
        .expect("guest connects");
    owner
        .publish_on_queue(&queue, message(&json!({ "declared": true })))
        .await
        .expect("declared and published");
    let everything = ".*";
    for (user, configure, write, read, operation, refused) in [
        (
            "no-configure",
            "^$",
            everything,
            everything,
            "consume",
            "configure permission",
        ),
        (
            "no-read",
            everything,
            everything,
            "^$",
            "consume",
            "read (exchange) permission",
        ),
        (
            // Its own queues, not the default exchange that publishes to them.
            "no-write",
            everything,
            "^guarded\\.",
            everything,
            "publish",
            "write permission",
        ),
    ] {
        ctl(&["add_user", user, "pw"]).await;
        ctl(&["set_permissions", "-p", "/", user, configure, write, read]).await;
        let url = cluster
            .url(0)
            .replacen("guest:guest", &format!("{user}:pw"), 1);
        let client = AmqpMessaging::connect(settings(&url))
            .await
            .unwrap_or_else(|e| panic!("{user} connects: {e}"));
        let started = Instant::now();
        let outcome = if operation == "consume" {
            client
                .subscribe_to_queue(&queue, "test", Consumed::default().handler())
                .await
                .map(drop)
        } else {
            client
                .publish_on_queue(&queue, message(&json!({ "by": user })))
                .await
        };
        let Err(error) = outcome else {
            panic!("{user} could {operation}");
        };
        let text = error.to_string();
        assert!(
            matches!(error, MessagingError::PermissionDenied { .. })
                && text.contains(refused)
                && text.contains(&format!("refused for user '{user}'"))
                && (text.contains(&queue.name) || text.contains("amq.default"))
                && text.contains("set_permissions"),
            "{user}: {text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{user}: refused after {:?}",
            started.elapsed()
        );
        eprintln!("{user}: {text}");
        client.close().await.expect("closes");
    }
    owner.close().await.expect("closes");
    cluster.shutdown().await.expect("node shut down");
}
