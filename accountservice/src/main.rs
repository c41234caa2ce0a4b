//! accountservice: accounts over HTTP on port 6767, and VIP notifications that are never lost.

use accountservice::app::Application;
use anyhow::Context;
use common::bootstrap::{Launch, shutdown_signal};

fn main() -> anyhow::Result<()> {
    common::bootstrap::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let launch = Launch::from_command_line("accountservice", env!("CARGO_PKG_VERSION"));
    let app = Application::build(launch)
        .await
        .context("accountservice could not start")?;
    app.run_until_stopped(shutdown_signal())
        .await
        .context("accountservice did not stop cleanly")
}
