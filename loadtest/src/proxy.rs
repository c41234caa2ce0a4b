//! `loadtest --proxy`: a TCP proxy in front of the broker that the script can partition with
//! signals, for faults that a broker restart does not make (a blackhole: nothing answers,
//! nothing closes). The proxy itself is test-support's, as the services' tests use it.

use std::net::SocketAddr;
use std::path::Path;

use test_support::TcpProxy;
use tokio::signal::unix::{SignalKind, signal};

use crate::error::Error;

/// Forwards to `upstream` until SIGTERM or SIGINT, writing where it listens to `address_file`;
/// SIGUSR1 starts a blackhole, SIGUSR2 ends it.
pub async fn run(upstream: SocketAddr, address_file: &Path) -> Result<(), Error> {
    let failed = |action: String| move |source| Error::Proxy { action, source };
    let listen = |kind, name: &str| signal(kind).map_err(failed(format!("listen for {name}")));
    let mut start = listen(SignalKind::user_defined1(), "SIGUSR1")?;
    let mut end = listen(SignalKind::user_defined2(), "SIGUSR2")?;
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
    let proxy = TcpProxy::start(upstream).await;
    std::fs::write(address_file, proxy.address().to_string()).map_err(failed(format!(
        "write its address to {}",
        address_file.display()
    )))?;
    loop {
        tokio::select! {
            _ = start.recv() => {
                println!("proxy: blackhole on");
                proxy.blackhole(true);
            }
            _ = end.recv() => {
                println!("proxy: blackhole off");
                proxy.blackhole(false);
            }
            _ = terminate.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
