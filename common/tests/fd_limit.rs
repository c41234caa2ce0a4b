//! The HTTP server out of file descriptors (`accept`: too many open files, EMFILE): it keeps
//! its accept loop, tries again with backoff, and serves as soon as descriptors are free.
//! Its own test binary, since it lowers the open-file limit of the whole process.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::bootstrap::{HttpTuning, serve};
use rlimit::Resource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// The open-file limit the test runs under: room for the runtime and a few dozen sockets.
const LIMIT: u64 = 128;
/// Generous: the server tries again within a second.
const LONG: Duration = Duration::from_secs(10);

/// One `GET /` on a new connection: the status line, or why there is none.
async fn request(address: std::net::SocketAddr) -> Result<String, String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn out_of_file_descriptors_the_server_keeps_accepting_once_some_are_free() {
    let (_, hard) = rlimit::getrlimit(Resource::NOFILE).expect("the open-file limit");
    rlimit::setrlimit(Resource::NOFILE, LIMIT.min(hard), hard).expect("a lower open-file limit");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let address = listener.local_addr().expect("address");
    let router = Router::new().route("/", get(|| async { "up" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve(listener, router, &HttpTuning::default(), async {
            let _ = stopped.await;
        })
        .await
    });
    assert_eq!(request(address).await.as_deref(), Ok("HTTP/1.1 200 OK"));

    // Every descriptor taken but one, which a client takes: its connection waits in the
    // listen backlog, and the server's accept fails for want of a descriptor.
    let mut ballast = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        ballast.push(file);
        assert!(
            ballast.len() < LIMIT as usize,
            "the limit was never reached"
        );
    }
    ballast.pop();
    let mut waiting = TcpStream::connect(address).await.expect("connects");
    waiting
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request sent");
    let mut answer = Vec::new();
    let unanswered = timeout(Duration::from_millis(300), waiting.read_to_end(&mut answer)).await;
    assert!(
        unanswered.is_err(),
        "the connection waits, neither served nor closed, while no descriptor is free: {unanswered:?}"
    );

    drop(ballast);
    timeout(LONG, waiting.read_to_end(&mut answer))
        .await
        .expect("served once descriptors are free")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert_eq!(request(address).await.as_deref(), Ok("HTTP/1.1 200 OK"));
    assert!(!server.is_finished(), "the server is still running");
    let _ = stop.send(());
    timeout(LONG, server)
        .await
        .expect("the server stops")
        .expect("the server task")
        .expect("the server ends without an error");
}
