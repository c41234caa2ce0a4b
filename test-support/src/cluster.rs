//! [`Cluster`]: a real RabbitMQ cluster of a few nodes on this machine, beside its own broker,
//! for tests that kill, stop and restart nodes (quorum queue fail-over, a rolling upgrade, a
//! client moving to another node).
//!
//! # How the nodes run
//!
//! Every node is an ordinary `rabbitmq-server -detached` of the installed package, told
//! through its environment to keep out of the way of the machine's own node
//! (`rabbit@localhost` on 5672) and of every other test:
//!
//! - `RABBITMQ_NODENAME=goblog-<8 hex>-<i>@localhost`, unique per cluster;
//! - `RABBITMQ_NODE_PORT` and `RABBITMQ_DIST_PORT`: free ports, found by binding
//!   `127.0.0.1:0`; `rabbitmq.conf` holds `listeners.tcp.1 = 127.0.0.1:PORT` too, because the
//!   machine's own `/etc/rabbitmq/rabbitmq.conf`, which binds 5672, must not be read;
//! - `RABBITMQ_MNESIA_BASE`, `RABBITMQ_LOG_BASE`, `RABBITMQ_CONFIG_FILE`,
//!   `RABBITMQ_ADVANCED_CONFIG_FILE` (`[].`), `RABBITMQ_ENABLED_PLUGINS_FILE` (`[].`: the
//!   management plugin's port is the machine node's) and `RABBITMQ_CONF_ENV_FILE` (empty: the
//!   machine's own sets `NODENAME=rabbit@localhost`), all in a temporary folder of the node's own, in
//!   `/tmp` (user `rabbitmq` must reach it, which a `TMPDIR` under `/root` would not allow)
//!   and owned by `rabbitmq`;
//! - the Erlang distribution on loopback only, as the machine's node has it.
//!
//! `rabbitmq-server` and `rabbitmqctl`, run as root, switch to user `rabbitmq` themselves
//! (Debian's wrapper), which is why the cluster needs root; the environment goes through.
//! Every `rabbitmqctl` call names its node with `-n`: none ever reaches `rabbit@localhost`.
//!
//! Nodes boot one after another: Erlang VMs booting side by side on two cores take far longer,
//! and `rabbitmqctl await_startup` fails at once for a node that epmd does not list yet, so the
//! harness waits for epmd first. Node 1 and on then join node 0 (`stop_app`, `join_cluster`,
//! `start_app`). A node killed or stopped and then started again with the same environment
//! rejoins by itself: its data names its peers.
//!
//! # Finding a node's processes
//!
//! Each node is started with `GOBLOG_RABBITMQ_NODE=<its name>` and
//! `GOBLOG_RABBITMQ_CLUSTER=<cluster id>` in its environment, which its Erlang VM
//! (`beam.smp`) and the helpers it forks (`erl_child_setup`, `inet_gethost`, `memsup`...)
//! inherit, so `/proc/<pid>/environ` tells which processes are whose, even those of a node
//! still booting. That is how [`Cluster::kill`] finds the OS pid to send SIGKILL to (the same
//! pid as `rabbitmqctl eval 'list_to_integer(os:getpid()).'` gives, without a round trip to a
//! node that may hang), and how teardown makes sure nothing is left. epmd is never killed: a
//! node starts one if none runs, and others may need it. A third entry,
//! `GOBLOG_RABBITMQ_OWNER=<pid>:<start time>`, names the test process: nodes whose test
//! process died without unwinding (SIGKILL, abort), so no `Drop` ran, are killed by the next
//! [`Cluster::start`].
//!
//! # RabbitMQ 4.0 from a chroot
//!
//! When `TEST_RABBITMQ_ROOT` names a root file system with another rabbitmq-server (Debian
//! trixie's 4.0.5 on Erlang 27, made by `scripts/ensure-rabbitmq4-root.sh`), the nodes run
//! from it: their folders are made in its `/tmp`, owned by its own `rabbitmq` user (whose uid
//! need not be the host's), and every `rabbitmq-server` and `rabbitmqctl` runs as
//! `unshare --mount sh -c 'mount -t proc proc ROOT/proc && exec chroot ROOT …'`: `/proc` is
//! mounted in a mount namespace of the command's own, which ends with the last process in it
//! (for a node, when the node dies), so no mount is ever left behind. The chroot shares the
//! host's network and epmd; its nodes and its `rabbitmqctl` use the Erlang cookie in the
//! root's `/var/lib/rabbitmq`.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tokio::process::Command;
use tokio::time::Instant;

/// Names the root file system nodes run from instead of the host's rabbitmq-server.
const ROOT_VARIABLE: &str = "TEST_RABBITMQ_ROOT";

/// How long a node may take to boot (and rejoin): about 10 s each here, but tests share two
/// cores with other tests.
const BOOT_LIMIT: Duration = Duration::from_secs(180);
/// How long any other `rabbitmqctl` command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// How long a killed or stopped node's processes may take to exit.
const EXIT_LIMIT: Duration = Duration::from_secs(60);
/// Between two polls.
const POLL: Duration = Duration::from_millis(200);
/// How long none of a booting node's processes may be seen before it counts as exited.
const EXIT_GRACE: Duration = Duration::from_secs(3);
/// The environment of every command run: nothing of the test process's own.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Runs `$@` in root `$0` with `/proc` mounted, in the mount namespace `unshare` made.
const IN_ROOT: &str = r#"mount -t proc proc "$0/proc" && exec chroot "$0" "$@""#;
const NODE_MARK: &str = "GOBLOG_RABBITMQ_NODE";
const CLUSTER_MARK: &str = "GOBLOG_RABBITMQ_CLUSTER";
const OWNER_MARK: &str = "GOBLOG_RABBITMQ_OWNER";
const EPMD: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4369);

/// What went wrong starting, managing or stopping a node, naming the node and the command.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "the RabbitMQ cluster tests need root: rabbitmq-server runs as user rabbitmq, which \
         only root may switch to (run them as root, as scripts/test.sh does in CI)"
    )]
    NeedsRoot,
    #[error("{0}")]
    Install(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("node {node}: `{command}` failed ({status}): {stderr}")]
    Command {
        node: String,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("node {node}: `{command}` printed what this harness cannot read ({problem}): {output}")]
    Output {
        node: String,
        command: String,
        problem: String,
        output: String,
    },
    #[error("node {node}: timed out after {limit:?} waiting until {what}{log}")]
    Timeout {
        node: String,
        what: String,
        limit: Duration,
        /// The end of the node's log, when it tells something.
        log: String,
    },
    #[error("node {node} exited while booting{log}")]
    Exited { node: String, log: String },
    #[error("no node of the cluster is running to ask")]
    NoneRunning,
}

/// A RabbitMQ cluster of nodes of its own on this machine (see the module docs), stopped and
/// removed when dropped, also when the test panicked. Nodes are numbered from 0; the methods
/// taking a node's number panic if there is no such node, as indexing does.
pub struct Cluster {
    id: String,
    install: Install,
    nodes: Vec<Node>,
    /// Lines every node's `rabbitmq.conf` holds besides its listener.
    config: String,
}

struct Node {
    name: String,
    amqp_port: u16,
    dist_port: u16,
    /// On the host; removed with the node.
    dir: TempDir,
    /// The same folder as the node sees it (inside the root, for a chroot).
    dir_seen: PathBuf,
    /// Started and not since killed or stopped, as far as this harness did.
    up: AtomicBool,
}

/// Where rabbitmq-server comes from: the host, or a root file system to chroot into.
struct Install {
    root: Option<PathBuf>,
    uid: u32,
    gid: u32,
}

/// A row of `list_queues`.
struct QueueRow {
    leader: Option<String>,
    members: Vec<String>,
    online: Vec<String>,
}

impl Cluster {
    /// Boots `nodes` nodes (one at least) one after another, joins them to node 0 and returns
    /// once every one runs and node 0 lists them all as running. Prints how long that took.
    pub async fn start(nodes: usize) -> Result<Self, ClusterError> {
        Self::start_with_config(nodes, &[]).await
    }

    /// As [`Cluster::start`], with `config` lines added to every node's `rabbitmq.conf`
    /// (e.g. `deprecated_features.permit.transient_nonexcl_queues = false`).
    pub async fn start_with_config(nodes: usize, config: &[&str]) -> Result<Self, ClusterError> {
        assert!(nodes > 0, "a cluster of no node");
        if effective_uid()? != 0 {
            return Err(ClusterError::NeedsRoot);
        }
        let install = Install::find()?;
        kill_orphans();
        let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let ports = free_ports(2 * nodes)?;
        let mut cluster = Self {
            id,
            install,
            nodes: Vec::with_capacity(nodes),
            config: config.iter().map(|line| format!("{line}\n")).collect(),
        };
        for i in 0..nodes {
            let node = cluster.prepare(i, ports[2 * i], ports[2 * i + 1])?;
            cluster.nodes.push(node);
        }
        let started = Instant::now();
        for i in 0..nodes {
            cluster.boot(i).await?;
            if i > 0 {
                let first = cluster.nodes[0].name.clone();
                cluster.ctl(i, &["stop_app"], COMMAND_LIMIT).await?;
                cluster
                    .ctl(i, &["join_cluster", &first], COMMAND_LIMIT)
                    .await?;
                cluster.ctl(i, &["start_app"], BOOT_LIMIT).await?;
            }
            cluster.nodes[i].up.store(true, Ordering::SeqCst);
        }
        let status = cluster.wait_clustered(0).await?;
        let version = |key: &str| {
            status["versions"][&cluster.nodes[0].name][key]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        };
        eprintln!(
            "Cluster: {nodes} node{} of RabbitMQ {} (Erlang {}{}) running and clustered in {:.1?}: {}",
            if nodes == 1 { "" } else { "s" },
            version("rabbitmq_version"),
            version("erlang_version"),
            cluster
                .install
                .root
                .as_ref()
                .map(|root| format!(", from {}", root.display()))
                .unwrap_or_default(),
            started.elapsed(),
            cluster.names().join(", "),
        );
        Ok(cluster)
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f` for node `i`.
    pub fn url(&self, i: usize) -> String {
        format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f",
            self.node(i).amqp_port
        )
    }

    /// Every node's URL, joined with `,`: what the services' `amqp_server_url` takes.
    pub fn urls(&self) -> String {
        (0..self.nodes.len())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `i`'s Erlang node name, `goblog-<cluster id>-<i>@localhost`.
    pub fn node_name(&self, i: usize) -> &str {
        &self.node(i).name
    }

    /// The node whose AMQP port is `port`, if it is one of this cluster's.
    pub fn index_of_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|node| node.amqp_port == port)
    }

    /// Kills node `i` with SIGKILL, as a crash would, and returns once its processes are gone
    /// and epmd no longer lists it.
    pub async fn kill(&self, i: usize) -> Result<(), ClusterError> {
        let node = self.node(i);
        node.up.store(false, Ordering::SeqCst);
        let vms: Vec<u32> = marked(&format!("{NODE_MARK}={}", node.name))
            .into_iter()
            .filter(|process| process.comm == "beam.smp")
            .map(|process| process.pid)
            .collect();
        send_kill(&vms);
        self.wait_gone(i).await
    }

    /// Stops node `i` gracefully (`rabbitmqctl stop`) and returns once its processes are gone.
    pub async fn stop_node(&self, i: usize) -> Result<(), ClusterError> {
        self.node(i).up.store(false, Ordering::SeqCst);
        self.ctl(i, &["stop"], COMMAND_LIMIT).await?;
        self.wait_gone(i).await
    }

    /// Boots node `i` again (after [`kill`](Self::kill) or [`stop_node`](Self::stop_node))
    /// with the same environment, and returns once it runs and is back in the cluster: it
    /// lists as running every node that this harness has running.
    pub async fn start_node(&self, i: usize) -> Result<(), ClusterError> {
        let started = Instant::now();
        self.boot(i).await?;
        self.node(i).up.store(true, Ordering::SeqCst);
        self.wait_clustered(i).await?;
        eprintln!(
            "Cluster: {} running and back in the cluster in {:.1?}",
            self.node(i).name,
            started.elapsed()
        );
        Ok(())
    }

    /// Stops node `i` gracefully and starts it again, as a rolling upgrade does.
    pub async fn restart(&self, i: usize) -> Result<(), ClusterError> {
        self.stop_node(i).await?;
        self.start_node(i).await
    }

    /// The node leading quorum queue `queue` (in vhost `/`), or `None` if the queue does not
    /// exist or has no leader right now (an election under way).
    pub async fn leader_of(&self, queue: &str) -> Result<Option<usize>, ClusterError> {
        match self.queue(queue).await? {
            Some(QueueRow {
                leader: Some(leader),
                ..
            }) => self.index_of_name(&leader).map(Some),
            _ => Ok(None),
        }
    }

    /// The nodes holding a member of quorum queue `queue`, running or not, in node order;
    /// none if the queue does not exist.
    pub async fn members_of(&self, queue: &str) -> Result<Vec<usize>, ClusterError> {
        let Some(row) = self.queue(queue).await? else {
            return Ok(Vec::new());
        };
        self.indexes(&row.members)
    }

    /// The nodes whose member of quorum queue `queue` runs, in node order (`list_queues`'
    /// `online`): a killed node's member leaves this list, and is back once the node has
    /// started again and restarted it.
    pub async fn online_members_of(&self, queue: &str) -> Result<Vec<usize>, ClusterError> {
        let Some(row) = self.queue(queue).await? else {
            return Ok(Vec::new());
        };
        self.indexes(&row.online)
    }

    /// The node that the client connection named `connection_name` (the AMQP client property
    /// `connection_name`, lapin's `ConnectionProperties::with_connection_name`) is connected
    /// to, or `None` if no node has such a connection. (RabbitMQ 3.10's `list_connections`
    /// has no `node` column: the connection's server port tells the node.)
    pub async fn connected_node(
        &self,
        connection_name: &str,
    ) -> Result<Option<usize>, ClusterError> {
        let i = self.running()?;
        let args = [
            "list_connections",
            "-q",
            "--formatter",
            "json",
            "port",
            "client_properties",
        ];
        let output = self.ctl(i, &args, COMMAND_LIMIT).await?;
        let rows = self.json_rows(i, &args, &output)?;
        for row in rows {
            if client_property(&row["client_properties"], "connection_name")
                == Some(connection_name)
            {
                let port = row["port"].as_u64().and_then(|p| u16::try_from(p).ok());
                return Ok(port.and_then(|port| self.index_of_port(port)));
            }
        }
        Ok(None)
    }

    /// Runs `rabbitmqctl -n <node i> ARGS` (e.g. `add_user`, `close_all_connections`) and
    /// returns what it printed.
    pub async fn rabbitmqctl(&self, i: usize, args: &[&str]) -> Result<String, ClusterError> {
        self.ctl(i, args, COMMAND_LIMIT).await
    }

    /// Deletes queue `queue` (in vhost `/`) through a running node, if it exists.
    pub async fn delete_queue(&self, queue: &str) -> Result<(), ClusterError> {
        let i = self.running()?;
        if self.queue(queue).await?.is_some() {
            self.ctl(i, &["delete_queue", queue], COMMAND_LIMIT).await?;
        }
        Ok(())
    }

    /// Kills every node, waits until none of their processes is left and epmd lists none of
    /// them, and removes their folders: what dropping the cluster does, with the outcome.
    pub async fn shutdown(self) -> Result<(), ClusterError> {
        tokio::task::spawn_blocking(move || self.teardown())
            .await
            .map_err(|e| ClusterError::Io {
                what: "tearing the cluster down".into(),
                source: io::Error::other(e.to_string()),
            })?
    }

    fn node(&self, i: usize) -> &Node {
        self.nodes.get(i).unwrap_or_else(|| {
            panic!(
                "the cluster has no node {i}: it has {} (numbered from 0)",
                self.nodes.len()
            )
        })
    }

    fn names(&self) -> Vec<&str> {
        self.nodes.iter().map(|node| node.name.as_str()).collect()
    }

    fn index_of_name(&self, name: &str) -> Result<usize, ClusterError> {
        self.nodes
            .iter()
            .position(|node| node.name == name)
            .ok_or_else(|| ClusterError::Output {
                node: self.nodes[0].name.clone(),
                command: "list_queues".into(),
                problem: "a node that is not one of this cluster's".into(),
                output: name.into(),
            })
    }

    fn indexes(&self, names: &[String]) -> Result<Vec<usize>, ClusterError> {
        let mut indexes = names
            .iter()
            .map(|name| self.index_of_name(name))
            .collect::<Result<Vec<_>, _>>()?;
        indexes.sort_unstable();
        Ok(indexes)
    }

    /// A node this harness has running, to ask about the cluster.
    fn running(&self) -> Result<usize, ClusterError> {
        self.nodes
            .iter()
            .position(|node| node.up.load(Ordering::SeqCst))
            .ok_or(ClusterError::NoneRunning)
    }

    /// Makes node `i`'s folder and files.
    fn prepare(&self, i: usize, amqp_port: u16, dist_port: u16) -> Result<Node, ClusterError> {
        let name = format!("goblog-{}-{i}@localhost", self.id);
        let io = |what: &str| {
            let what = format!("node {name}: {what}");
            move |source| ClusterError::Io { what, source }
        };
        let tmp = self.install.host_path(Path::new("/tmp"));
        let dir = tempfile::Builder::new()
            .prefix(&format!("goblog-{}-{i}.", self.id))
            .tempdir_in(&tmp)
            .map_err(io(&format!("making a folder in {}", tmp.display())))?;
        let dir_seen = Path::new("/tmp").join(dir.path().file_name().unwrap_or_default());
        let files = [
            (
                "rabbitmq.conf",
                format!("listeners.tcp.1 = 127.0.0.1:{amqp_port}\n{}", self.config),
            ),
            ("advanced.config", "[].\n".to_owned()),
            ("enabled_plugins", "[].\n".to_owned()),
            ("rabbitmq-env.conf", String::new()),
        ];
        for (file, content) in files {
            fs::write(dir.path().join(file), content).map_err(io(&format!("writing {file}")))?;
        }
        for sub in ["mnesia", "log"] {
            fs::create_dir(dir.path().join(sub)).map_err(io(&format!("making {sub}/")))?;
        }
        let mut paths = vec![dir.path().to_owned()];
        for entry in fs::read_dir(dir.path()).map_err(io("listing its folder"))? {
            paths.push(entry.map_err(io("listing its folder"))?.path());
        }
        for path in paths {
            chown(&path, Some(self.install.uid), Some(self.install.gid))
                .map_err(io(&format!("chown rabbitmq {}", path.display())))?;
        }
        Ok(Node {
            name,
            amqp_port,
            dist_port,
            dir,
            dir_seen,
            up: AtomicBool::new(false),
        })
    }

    /// Starts node `i` and waits until it has booted (not until it is clustered).
    async fn boot(&self, i: usize) -> Result<(), ClusterError> {
        let node = self.node(i);
        let seen = |file: &str| node.dir_seen.join(file);
        let launch_log = node.dir.path().join("launch.log");
        let io = |what: &str| {
            let what = format!("node {}: {what}", node.name);
            move |source| ClusterError::Io { what, source }
        };
        let out = fs::File::create(&launch_log).map_err(io("creating launch.log"))?;
        let err = out.try_clone().map_err(io("opening launch.log"))?;
        let mut command = self.install.command("rabbitmq-server");
        command
            .arg("-detached")
            // The detached VM must not hold pipes of ours open: its output goes to a file.
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .env(NODE_MARK, &node.name)
            .env(CLUSTER_MARK, &self.id)
            .env(OWNER_MARK, owner()?)
            .env("HOME", "/var/lib/rabbitmq")
            .env("RABBITMQ_NODENAME", &node.name)
            .env("RABBITMQ_NODE_PORT", node.amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", node.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", seen("mnesia"))
            .env("RABBITMQ_LOG_BASE", seen("log"))
            .env("RABBITMQ_CONFIG_FILE", seen("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", seen("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", seen("enabled_plugins"))
            .env("RABBITMQ_CONF_ENV_FILE", seen("rabbitmq-env.conf"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            );
        let shown = "rabbitmq-server -detached";
        let status = tokio::time::timeout(COMMAND_LIMIT, command.status())
            .await
            .map_err(|_| self.timeout(i, &format!("`{shown}` returned"), COMMAND_LIMIT))?
            .map_err(io(&format!("running `{shown}`")))?;
        if !status.success() {
            return Err(ClusterError::Command {
                node: node.name.clone(),
                command: shown.into(),
                status: status.to_string(),
                stderr: fs::read_to_string(&launch_log).unwrap_or_default(),
            });
        }

        // epmd lists the node once its distribution is up, early in the boot; from then on
        // await_startup waits for the rest.
        let deadline = Instant::now() + BOOT_LIMIT;
        let short = short_name(&node.name);
        // The launcher hands over to the detached VM through short-lived processes: none of
        // the node's is seen for a moment now and then. Gone for EXIT_GRACE is gone.
        let mut unseen_since = None;
        loop {
            if marked(&format!("{NODE_MARK}={}", node.name)).is_empty() {
                let since = *unseen_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= EXIT_GRACE {
                    return Err(ClusterError::Exited {
                        node: node.name.clone(),
                        log: self.log_tail(i),
                    });
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
            unseen_since = None;
            if epmd_names().is_ok_and(|names| names.iter().any(|name| name == short)) {
                let left = deadline.saturating_duration_since(Instant::now());
                let seconds = left.as_secs().max(1).to_string();
                match self
                    .ctl(
                        i,
                        &["await_startup", "--timeout", &seconds],
                        left + COMMAND_LIMIT,
                    )
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(error) if Instant::now() >= deadline => return Err(error),
                    Err(_) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(self.timeout(i, "it booted", BOOT_LIMIT));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls node `i`'s `cluster_status` until it lists as running itself and every node
    /// this harness has running; returns that status.
    async fn wait_clustered(&self, i: usize) -> Result<Value, ClusterError> {
        let deadline = Instant::now() + BOOT_LIMIT;
        let args = ["cluster_status", "-q", "--formatter", "json"];
        let expected: Vec<&str> = (self.nodes.iter().enumerate())
            .filter(|(j, node)| *j == i || node.up.load(Ordering::SeqCst))
            .map(|(_, node)| node.name.as_str())
            .collect();
        loop {
            // A node just (re)started may not answer every command yet: asked again until the
            // deadline, which reports what it last said.
            let seen = match self.ctl(i, &args, COMMAND_LIMIT).await {
                Ok(output) => {
                    let status = self.json(i, &args, &output)?;
                    let running: Vec<&str> = status["running_nodes"]
                        .as_array()
                        .map(|nodes| nodes.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    if expected.iter().all(|name| running.contains(name)) {
                        return Ok(status);
                    }
                    format!("it lists {running:?}")
                }
                Err(error) => format!("last: {error}"),
            };
            if Instant::now() >= deadline {
                let what = format!("its cluster_status lists {expected:?} as running ({seen})");
                return Err(self.timeout(i, &what, BOOT_LIMIT));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until none of node `i`'s processes is left and epmd no longer lists it.
    async fn wait_gone(&self, i: usize) -> Result<(), ClusterError> {
        let node = self.node(i);
        let deadline = Instant::now() + EXIT_LIMIT;
        let short = short_name(&node.name);
        loop {
            let left = marked(&format!("{NODE_MARK}={}", node.name));
            let listed = epmd_names().is_ok_and(|names| names.iter().any(|name| name == short));
            if left.is_empty() && !listed {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let what = format!(
                    "it exited (processes left: {}; listed by epmd: {listed})",
                    describe(&left)
                );
                return Err(self.timeout(i, &what, EXIT_LIMIT));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `list_queues` on a running node, the row of `queue`.
    async fn queue(&self, queue: &str) -> Result<Option<QueueRow>, ClusterError> {
        let i = self.running()?;
        let args = [
            "list_queues",
            "-q",
            "--formatter",
            "json",
            "name",
            "leader",
            "members",
            "online",
        ];
        let output = self.ctl(i, &args, COMMAND_LIMIT).await?;
        let rows = self.json_rows(i, &args, &output)?;
        let names = |value: &Value| -> Vec<String> {
            value
                .as_array()
                .map(|names| {
                    names
                        .iter()
                        .filter_map(|name| name.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(rows
            .iter()
            .find(|row| row["name"].as_str() == Some(queue))
            .map(|row| QueueRow {
                leader: row["leader"]
                    .as_str()
                    .filter(|leader| !leader.is_empty())
                    .map(str::to_owned),
                members: names(&row["members"]),
                online: names(&row["online"]),
            }))
    }

    /// Runs `rabbitmqctl -n <node i> ARGS` and returns its standard output.
    async fn ctl(&self, i: usize, args: &[&str], limit: Duration) -> Result<String, ClusterError> {
        let node = self.node(i);
        let shown = format!("rabbitmqctl -n {} {}", node.name, args.join(" "));
        let mut command = self.install.command("rabbitmqctl");
        command
            .arg("-n")
            .arg(&node.name)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = tokio::time::timeout(limit, command.output())
            .await
            .map_err(|_| self.timeout(i, &format!("`{shown}` returned"), limit))?
            .map_err(|source| ClusterError::Io {
                what: format!("running `{shown}`"),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(ClusterError::Command {
            node: node.name.clone(),
            command: shown,
            status: output.status.to_string(),
            // rabbitmqctl prints some of its errors on standard output.
            stderr: format!("{}{}", stderr.trim(), stdout.trim()),
        })
    }

    fn json(&self, i: usize, args: &[&str], output: &str) -> Result<Value, ClusterError> {
        serde_json::from_str(output).map_err(|e| ClusterError::Output {
            node: self.node(i).name.clone(),
            command: format!("rabbitmqctl {}", args.join(" ")),
            problem: format!("not JSON: {e}"),
            output: output.into(),
        })
    }

    fn json_rows(&self, i: usize, args: &[&str], output: &str) -> Result<Vec<Value>, ClusterError> {
        match self.json(i, args, output)? {
            Value::Array(rows) => Ok(rows),
            _ => Err(ClusterError::Output {
                node: self.node(i).name.clone(),
                command: format!("rabbitmqctl {}", args.join(" ")),
                problem: "not a JSON array".into(),
                output: output.into(),
            }),
        }
    }

    fn timeout(&self, i: usize, what: &str, limit: Duration) -> ClusterError {
        ClusterError::Timeout {
            node: self.node(i).name.clone(),
            what: what.into(),
            limit,
            log: self.log_tail(i),
        }
    }

    /// The last lines of node `i`'s launch output and log, for an error message.
    fn log_tail(&self, i: usize) -> String {
        let node = self.node(i);
        let log = node
            .dir
            .path()
            .join("log")
            .join(format!("{}.log", node.name));
        let mut tail = String::new();
        for file in [node.dir.path().join("launch.log"), log] {
            let Ok(text) = fs::read_to_string(&file) else {
                continue;
            };
            let lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                continue;
            }
            tail.push_str(&format!("\n--- the end of {}:", file.display()));
            for line in &lines[lines.len().saturating_sub(15)..] {
                tail.push_str("\n    ");
                tail.push_str(line);
            }
        }
        tail
    }

    /// Kills every process of every node, waits until they are gone and epmd lists none of
    /// them, and removes their folders. Blocking: for `Drop` and `shutdown`.
    fn teardown(&self) -> Result<(), ClusterError> {
        for node in &self.nodes {
            node.up.store(false, Ordering::SeqCst);
        }
        let mark = format!("{CLUSTER_MARK}={}", self.id);
        let deadline = std::time::Instant::now() + EXIT_LIMIT;
        let shorts: Vec<&str> = self.names().into_iter().map(short_name).collect();
        loop {
            let left = marked(&mark);
            send_kill(&left.iter().map(|process| process.pid).collect::<Vec<_>>());
            let listed: Vec<String> = epmd_names()
                .unwrap_or_default()
                .into_iter()
                .filter(|name| shorts.contains(&name.as_str()))
                .collect();
            if left.is_empty() && listed.is_empty() {
                break;
            }
            if std::time::Instant::now() >= deadline {
                return Err(ClusterError::Timeout {
                    node: self.names().join(", "),
                    what: format!(
                        "they exited (processes left: {}; listed by epmd: {listed:?})",
                        describe(&left)
                    ),
                    limit: EXIT_LIMIT,
                    log: String::new(),
                });
            }
            std::thread::sleep(POLL / 4);
        }
        for node in &self.nodes {
            match fs::remove_dir_all(node.dir.path()) {
                Err(source) if source.kind() != io::ErrorKind::NotFound => {
                    return Err(ClusterError::Io {
                        what: format!("removing {}", node.dir.path().display()),
                        source,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            eprintln!("Cluster: teardown: {error}");
        }
    }
}

impl Install {
    /// The host's rabbitmq-server, or the root that `TEST_RABBITMQ_ROOT` names.
    fn find() -> Result<Self, ClusterError> {
        let root = std::env::var_os(ROOT_VARIABLE)
            .filter(|root| !root.is_empty())
            .map(PathBuf::from);
        let (place, hint) = match &root {
            Some(root) => (
                format!("{ROOT_VARIABLE}={}", root.display()),
                "make one with scripts/ensure-rabbitmq4-root.sh",
            ),
            None => (
                "this machine".to_owned(),
                "install it (Debian: apt-get install rabbitmq-server), or set \
                 TEST_RABBITMQ_ROOT to a root file system that has it",
            ),
        };
        let at = |path: &str| match &root {
            Some(root) => root.join(path.trim_start_matches('/')),
            None => PathBuf::from(path),
        };
        if !at("/usr/sbin/rabbitmq-server").exists() {
            return Err(ClusterError::Install(format!(
                "{place}: no /usr/sbin/rabbitmq-server: {hint}"
            )));
        }
        let passwd = at("/etc/passwd");
        let users = fs::read_to_string(&passwd).map_err(|source| ClusterError::Io {
            what: format!("{place}: reading {}", passwd.display()),
            source,
        })?;
        let ids = users.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                ["rabbitmq", _, uid, gid, ..] => Some((uid.parse().ok()?, gid.parse().ok()?)),
                _ => None,
            }
        });
        let Some((uid, gid)) = ids else {
            return Err(ClusterError::Install(format!(
                "{place}: {} has no user rabbitmq: {hint}",
                passwd.display()
            )));
        };
        Ok(Self { root, uid, gid })
    }

    /// Where `path`, as the nodes see it, is on the host.
    fn host_path(&self, path: &Path) -> PathBuf {
        match &self.root {
            Some(root) => root.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_owned(),
        }
    }

    /// `program` as a command of this install, with a clean environment: in the root, with
    /// `/proc` mounted in a mount namespace of its own, when there is a root.
    fn command(&self, program: &str) -> Command {
        let mut command = match &self.root {
            None => Command::new(program),
            Some(root) => {
                let mut command = Command::new("unshare");
                command
                    .args(["--mount", "--propagation", "private", "sh", "-c", IN_ROOT])
                    .arg(root)
                    .arg(program);
                command
            }
        };
        command
            .env_clear()
            .env("PATH", PATH)
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }
}

/// A process found by [`marked`].
struct Process {
    pid: u32,
    comm: String,
}

/// The processes whose environment holds `entry` (`NAME=value`), epmd aside.
fn marked(entry: &str) -> Vec<Process> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for process in dir.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // Gone meanwhile, or a kernel thread: nothing to read.
        let Ok(environ) = fs::read(process.path().join("environ")) else {
            continue;
        };
        if !environ.split(|b| *b == 0).any(|e| e == entry.as_bytes()) {
            continue;
        }
        let comm = fs::read_to_string(process.path().join("comm")).unwrap_or_default();
        let comm = comm.trim_end().to_owned();
        if comm != "epmd" {
            found.push(Process { pid, comm });
        }
    }
    found
}

fn describe(processes: &[Process]) -> String {
    let names: Vec<String> = processes
        .iter()
        .map(|p| format!("{} {}", p.pid, p.comm))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// SIGKILL to `pids`; one that exited meanwhile is no error, as the caller polls after.
fn send_kill(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// This process's identity for [`OWNER_MARK`]: its pid and start time (a pid alone may be
/// reused by then).
fn owner() -> Result<String, ClusterError> {
    let pid = std::process::id();
    start_time(pid)
        .map(|start| format!("{pid}:{start}"))
        .ok_or_else(|| ClusterError::Io {
            what: "reading /proc/self/stat".into(),
            source: io::Error::other("no start time"),
        })
}

/// Field 22 of `/proc/<pid>/stat`: when the process started, in clock ticks since boot.
fn start_time(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, field 2, is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_owned)
}

/// Kills the nodes of test processes that died without dropping their cluster. Only nodes in
/// this process's PID namespace: the owner pid of a node started in a container means
/// nothing here.
fn kill_orphans() {
    let Ok(dir) = fs::read_dir("/proc") else {
        return;
    };
    let pid_namespace = |process: &Path| fs::read_link(process.join("ns/pid")).ok();
    let Some(ours) = pid_namespace(Path::new("/proc/self")) else {
        return;
    };
    let prefix = format!("{OWNER_MARK}=");
    let mut orphans = Vec::new();
    for process in dir.flatten() {
        let Some(pid) = process
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid_namespace(&process.path()).as_ref() != Some(&ours) {
            continue;
        }
        let Ok(environ) = fs::read(process.path().join("environ")) else {
            continue;
        };
        let owner = environ
            .split(|b| *b == 0)
            .find_map(|e| e.strip_prefix(prefix.as_bytes()))
            .and_then(|owner| std::str::from_utf8(owner).ok())
            .and_then(|owner| owner.split_once(':'));
        let Some((owner_pid, started)) = owner else {
            continue;
        };
        let alive = owner_pid
            .parse()
            .ok()
            .and_then(start_time)
            .is_some_and(|start| start == started);
        let comm = fs::read_to_string(process.path().join("comm")).unwrap_or_default();
        if !alive && comm.trim_end() != "epmd" {
            orphans.push(pid);
        }
    }
    if !orphans.is_empty() {
        eprintln!(
            "Cluster: killing {} processes of RabbitMQ nodes whose test process died",
            orphans.len()
        );
        send_kill(&orphans);
    }
}

/// The effective uid of this process, from `/proc/self/status`.
fn effective_uid() -> Result<u32, ClusterError> {
    let status = fs::read_to_string("/proc/self/status").map_err(|source| ClusterError::Io {
        what: "reading /proc/self/status".into(),
        source,
    })?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
        .ok_or_else(|| ClusterError::Io {
            what: "reading /proc/self/status".into(),
            source: io::Error::other("no effective uid on its Uid: line"),
        })
}

/// `count` distinct ports free on 127.0.0.1 right now (all bound at once, then let go).
fn free_ports(count: usize) -> Result<Vec<u16>, ClusterError> {
    let io = |source| ClusterError::Io {
        what: "finding a free port on 127.0.0.1".into(),
        source,
    };
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<io::Result<Vec<_>>>()
        .map_err(io)?;
    listeners
        .iter()
        .map(|listener| listener.local_addr().map(|address| address.port()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(io)
}

/// `name` of `name@host`: how epmd lists a node.
fn short_name(node: &str) -> &str {
    node.split_once('@').map_or(node, |(name, _)| name)
}

/// The node names epmd on 127.0.0.1 lists (its NAMES request, as `epmd -names` sends).
fn epmd_names() -> io::Result<Vec<String>> {
    let mut stream = TcpStream::connect_timeout(&EPMD, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    // Length 1, then NAMES_REQ (110, 'n').
    stream.write_all(&[0, 1, b'n'])?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    // epmd's own port (4 bytes), then a line `name NAME at port PORT` per node.
    let text = String::from_utf8_lossy(reply.get(4..).unwrap_or_default()).into_owned();
    Ok(text
        .lines()
        .filter_map(|line| line.strip_prefix("name "))
        .filter_map(|rest| rest.split(" at port ").next())
        .map(str::to_owned)
        .collect())
}

/// The value of `key` among a connection's client properties as `list_connections` prints
/// them in JSON (3.10 and 4.0 alike): a list of `[key, type, value]` triples.
fn client_property<'a>(properties: &'a Value, key: &str) -> Option<&'a str> {
    properties.as_array()?.iter().find_map(|triple| {
        let triple = triple.as_array()?;
        if triple.first()?.as_str()? == key {
            triple.last()?.as_str()
        } else {
            None
        }
    })
}
