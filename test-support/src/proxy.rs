//! A TCP proxy that can cut connections: recovery tests point a client at it instead of at the
//! broker, so they can simulate a broker restart, a network cut or a partition without
//! touching the broker that other tests share.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpProxy {
    address: SocketAddr,
    upstream: SocketAddr,
    /// Bumped on each cut: every connection older than the current generation closes.
    generation: watch::Sender<u64>,
    refusing: Arc<AtomicBool>,
    /// While true, nothing is forwarded and nothing is closed: a partition.
    blackholed: watch::Sender<bool>,
}

impl TcpProxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let (generation, _) = watch::channel(0u64);
        let refusing = Arc::new(AtomicBool::new(false));
        let (blackholed, _) = watch::channel(false);
        let (cuts, refuse, holes) = (generation.clone(), refusing.clone(), blackholed.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = cuts.subscribe();
                let born = *cut.borrow_and_update();
                let mut hole = holes.subscribe();
                tokio::spawn(async move {
                    let mut client = client;
                    if *hole.borrow_and_update() {
                        // Accepted, never answered; closed once the partition is over.
                        let _ = hole.wait_for(|on| !*on).await;
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let partitioned = tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => false,
                        _ = cut.wait_for(|now| *now > born) => false,
                        _ = hole.wait_for(|on| *on) => true,
                    };
                    if partitioned {
                        // Both ends stay open and hear nothing until it is over (or cut).
                        tokio::select! {
                            _ = hole.wait_for(|on| !*on) => {}
                            _ = cut.wait_for(|now| *now > born) => {}
                        }
                    }
                });
            }
        });
        Self {
            address,
            upstream,
            generation,
            refusing,
            blackholed,
        }
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `amqp://` URL of the test broker's user and vhost, through this proxy.
    pub fn amqp_url(&self) -> String {
        let broker = crate::amqp_url();
        let upstream = self.upstream.to_string();
        broker.replacen(&upstream, &self.address.to_string(), 1)
    }

    /// Drops every open connection at once (like a broker restart or a network cut).
    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// While blackholed, no byte is forwarded either way and no connection is closed: new ones
    /// are accepted and never answered, as across a network partition. When it ends, the
    /// connections it held are closed.
    pub fn blackhole(&self, on: bool) {
        self.blackholed.send_replace(on);
    }

    /// While refusing, new connections are closed as soon as they arrive (the broker is "down").
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }
}
