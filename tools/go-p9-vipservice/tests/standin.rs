//! Runs the built `go-p9-vipservice` binary against the real broker, on a queue of each test's
//! own: what Go's accountservice publishes is printed as Go's vipservice prints it, `/health`
//! answers as Go's does, SIGTERM ends it cleanly, and a queue declared otherwise (durable, as
//! our services declare it outside the compatibility mode) ends it at startup with the broker's
//! refusal, as Go's panics.

use std::process::Stdio;
use std::time::Duration;

use test_support::{Broker, Cleanup, GoAccountService, amqp_url, unique};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

/// The broker's URL spelt as Go's config spells it, `amqp://…:5672/` (the empty vhost, which
/// Go dials as `/`), when it names the default vhost.
fn go_spelling(url: String) -> String {
    match url.strip_suffix("%2f").or_else(|| url.strip_suffix("%2F")) {
        Some(go) => go.to_owned(),
        None => url,
    }
}

/// The stand-in started on `queue`, HTTP on a free port.
fn spawn(queue: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_go-p9-vipservice"))
        .args(["--amqp-url", &go_spelling(amqp_url()), "--queue", queue])
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("go-p9-vipservice starts")
}

fn lines<R: tokio::io::AsyncRead + Unpin>(stream: Option<R>) -> Lines<BufReader<R>> {
    BufReader::new(stream.expect("piped")).lines()
}

async fn next_line<R: tokio::io::AsyncRead + Unpin>(lines: &mut Lines<BufReader<R>>) -> String {
    timeout(LIMIT, lines.next_line())
        .await
        .expect("a line in time")
        .expect("readable")
        .expect("not the end of the output")
}

/// The port of `GET /health`, from the startup line on standard error.
async fn health_port(stderr: &mut Lines<BufReader<ChildStderr>>) -> u16 {
    let line = next_line(stderr).await;
    line.rsplit_once("GET /health on port ")
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in the startup line: {line}"))
}

#[tokio::test]
async fn prints_what_go_publishes_as_go_does_answers_health_and_stops_on_sigterm() {
    let cleanup = Cleanup::new();
    let queue = cleanup.queue(unique("vip_queue"));
    let broker = Broker::connect().await;
    let mut child = spawn(&queue);
    let mut stdout: Lines<BufReader<ChildStdout>> = lines(child.stdout.take());
    let mut stderr = lines(child.stderr.take());
    let port = health_port(&mut stderr).await;

    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .expect("GET /health");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["content-type"],
        "text/plain; charset=UTF-8"
    );
    assert_eq!(health.text().await.expect("body"), "OK");

    let account = GoAccountService::connect(&amqp_url())
        .await
        .expect("the Go publisher connects");
    let mut sent = Vec::new();
    for id in ["10000", "10001", "10002"] {
        sent.push(account.notify_vip(&queue, id).await.expect("published"));
    }
    for body in &sent {
        assert_eq!(
            next_line(&mut stdout).await,
            format!("Got a message: {body}")
        );
    }
    // Auto-ack: nothing is left in the queue, nothing unacknowledged.
    assert_eq!(broker.queue_depth(&queue).await, Some(0));
    account.close().await.expect("closed");

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().expect("running").to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = timeout(LIMIT, child.wait())
        .await
        .expect("it stops after SIGTERM")
        .expect("waited");
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_queue_declared_durable_ends_it_at_startup_with_the_broker_s_refusal() {
    let cleanup = Cleanup::new();
    let queue = cleanup.queue(unique("vip_queue"));
    Broker::connect().await.declare_durable(&queue).await;

    let child = spawn(&queue);
    let output = timeout(LIMIT, child.wait_with_output())
        .await
        .expect("it ends at once")
        .expect("waited");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PRECONDITION_FAILED") && stderr.contains(&queue),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
