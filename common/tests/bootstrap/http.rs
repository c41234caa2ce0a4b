//! The HTTP server's defences: slow and idle clients are closed after the header-read
//! timeout, and at most `http.max_connections` connections are served at once.

use std::time::Duration;

use test_support::{Cleanup, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{start, write_config_with};

/// Generous: the server closes them after 1 s.
const LIMIT: Duration = Duration::from_secs(10);

/// Reads until the server closes the connection; what it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    timeout(LIMIT, stream.read_to_end(&mut received))
        .await
        .expect("closed by the server in time")
        .expect("read");
    received
}

#[tokio::test]
async fn slow_and_idle_clients_are_closed_and_only_so_many_are_held_at_once() {
    let cleanup = Cleanup::new();
    let bus = cleanup.exchange(unique("springCloudBus"));
    let dir = tempfile::tempdir().expect("temp dir");
    write_config_with(
        dir.path(),
        "http-it",
        "http:\n  header_read_timeout_ms: 1000\n  max_connections: 4\n",
    );
    let running = start(dir.path(), &bus).await;
    let address = running.base.trim_start_matches("http://").to_owned();

    // Four clients that never finish their request head take every slot.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(&address).await.expect("connects");
        stream
            .write_all(b"GET /info HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half a head sent");
        slow.push(stream);
    }
    let http = reqwest::Client::new();
    let waiting = http
        .get(format!("{}/info", running.base))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(
        waiting.is_err(),
        "a fifth connection is not served meanwhile"
    );

    // The server closes them once their time is up, and serves again.
    for stream in &mut slow {
        until_closed(stream).await;
    }
    let info = http
        .get(format!("{}/info", running.base))
        .timeout(LIMIT)
        .send()
        .await
        .expect("served again");
    assert_eq!(info.status(), 200);

    // A kept-alive connection that sends nothing more is closed too.
    let mut idle = TcpStream::connect(&address).await.expect("connects");
    idle.write_all(b"GET /info HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request sent");
    let answered = until_closed(&mut idle).await;
    assert!(
        answered.starts_with(b"HTTP/1.1 200"),
        "answered, then closed"
    );

    let _ = running.stop.send(());
    running.stopped.await.expect("stopped");
}
