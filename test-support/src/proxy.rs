//! A TCP proxy that can cut connections: recovery tests point a client at it instead of at the
//! broker, so they can simulate a broker restart or a network cut without touching the broker
//! that other tests share.

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
}

impl TcpProxy {
    /// Listens on an ephemeral loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let (generation, _) = watch::channel(0u64);
        let refusing = Arc::new(AtomicBool::new(false));
        let (cuts, refuse) = (generation.clone(), refusing.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if refuse.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = cuts.subscribe();
                let born = *cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|now| *now > born) => {}
                    }
                });
            }
        });
        Self {
            address,
            upstream,
            generation,
            refusing,
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

    /// While refusing, new connections are closed as soon as they arrive (the broker is "down").
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }
}
