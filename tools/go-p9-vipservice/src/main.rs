//! `go-p9-vipservice`: the Go original's vipservice (callistaenterprise/goblog, P9) as a
//! process, so that a swarm can run it beside our accountservice as a team moving off Go would
//! (scripts/swarm-e2e.sh replaces our vipservice with it in the compatibility mode).
//!
//! What it does is what the Go code does on the wire (`test-support/GO_P9.md`, section 2): one
//! connection, `vip_queue` declared non-durable and classic with no arguments, no Qos, an
//! auto-ack consumer tagged `vipservice`, and `Got a message: <body>` on standard output for
//! each delivery, nothing else; `GET /health` answers 200 `OK` (text/plain) on port 6868, so the
//! image's HEALTHCHECK (`healthchecker --port=6868`) works as with ours. Like Go it never
//! reconnects: a refused declare or an unreachable broker at startup ends the process (Swarm
//! starts another), and once the broker cancels the consumer or the connection drops nothing
//! consumes any more (it says so once on standard error, which Go does not).
//!
//! It is a test stand-in: it keeps nothing, acks nothing itself, and no service depends on it.
//! Go's subscription to the Spring Cloud Bus is left out (nothing it would reload is used
//! here); `test_support::go_p9::GoBusListener` has it for the tests.

use std::process::ExitCode;

use anyhow::Context;
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use clap::Parser;
use test_support::go_p9::{GoVipConsumer, VIP_CONSUMER_TAG, VIP_QUEUE};
use tokio::net::TcpListener;

/// The Go original's vipservice (P9), on the wire as Go does it.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The broker: Go's `amqp_server_url` (go-microservice-config P9, `vipservice-test.yml`)
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@rabbitmq:5672/"
    )]
    amqp_url: String,
    /// The queue consumed (Go: `vip_queue`, hard-coded)
    #[arg(long, default_value = VIP_QUEUE)]
    queue: String,
    /// The HTTP port of `GET /health` (Go: `server_port`, 6868); 0 picks a free one
    #[arg(long, default_value_t = 6868)]
    port: u16,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("go-p9-vipservice: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let broker = redacted(&args.amqp_url);
    // Go subscribes before its web server starts: no /health until the consumer is registered.
    let consumer = GoVipConsumer::subscribe(&args.amqp_url, &args.queue, VIP_CONSUMER_TAG)
        .await
        .with_context(|| format!("could not subscribe to {} at {broker}", args.queue))?;
    let listener = TcpListener::bind(("0.0.0.0", args.port))
        .await
        .with_context(|| format!("could not listen on port {}", args.port))?;
    let port = listener
        .local_addr()
        .context("the listener's address")?
        .port();
    eprintln!(
        "go-p9-vipservice: consuming {} at {broker} as Go P9 does (auto-ack, tag {VIP_CONSUMER_TAG}); \
         GET /health on port {port}",
        args.queue
    );
    let queue = args.queue;
    tokio::spawn(async move {
        consumer
            .for_each(|message| println!("Got a message: {}", message.text()))
            .await;
        eprintln!(
            "go-p9-vipservice: the consumer of {queue} ended (queue deleted or connection lost); \
             like Go, nothing consumes it any more"
        );
    });
    axum::serve(listener, app())
        .with_graceful_shutdown(terminated())
        .await
        .context("the HTTP server failed")
}

/// Go's vipservice routes: `/health` only.
fn app() -> Router {
    Router::new().route(
        "/health",
        get(|| async { ([(CONTENT_TYPE, "text/plain; charset=UTF-8")], "OK") }),
    )
}

/// SIGTERM (Swarm stopping the task) or Ctrl-C. Go's vipservice closes its connection and exits
/// on either; here the process exits and the broker sees the socket close.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// The URL with its password replaced by `***`, for the log.
fn redacted(amqp_url: &str) -> String {
    match url::Url::parse(amqp_url) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => amqp_url.to_owned(),
    }
}
