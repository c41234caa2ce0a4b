//! A collector stand-in for the tracing benchmarks: accepts OTLP/HTTP exports
//! (`POST /v1/traces`, `/v1/metrics`, `/v1/logs`) and answers each 200 with an empty
//! protobuf response, as a collector that took everything does, without decoding them; on
//! SIGTERM or Ctrl-C it prints how many exports and bytes it took.
//!
//!   otlp-sink --port 14318   # then OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Answers OTLP/HTTP exports 200 and counts them")]
struct Args {
    /// Port to listen on, on 127.0.0.1.
    #[arg(long, default_value_t = 4318)]
    port: u16,
}

#[derive(Default)]
struct Taken {
    exports: AtomicU64,
    bytes: AtomicU64,
}

async fn take(
    State(taken): State<Arc<Taken>>,
    body: Bytes,
) -> ([(&'static str, &'static str); 1], Bytes) {
    taken.exports.fetch_add(1, Ordering::Relaxed);
    taken.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    (
        [(CONTENT_TYPE.as_str(), "application/x-protobuf")],
        Bytes::new(),
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let taken = Arc::new(Taken::default());
    let app = Router::new()
        .route("/v1/{signal}", post(take))
        .with_state(taken.clone());
    let address = ("127.0.0.1", args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped())
        .await
        .context("serving")?;
    println!(
        "otlp-sink: {} exports, {} bytes",
        taken.exports.load(Ordering::Relaxed),
        taken.bytes.load(Ordering::Relaxed)
    );
    Ok(())
}

async fn stopped() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                eprintln!("otlp-sink: no SIGTERM handler ({error}); Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
