//! vipservice: consumes VIP notifications and records offers, exactly once per message.

use anyhow::Context;
use common::bootstrap::{Launch, shutdown_signal};
use vipservice::Application;

fn main() -> anyhow::Result<()> {
    common::bootstrap::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let launch = Launch::from_command_line("vipservice", env!("CARGO_PKG_VERSION"));
    let app = Application::build(launch)
        .await
        .context("vipservice could not start")?;
    app.run_until_stopped(shutdown_signal())
        .await
        .context("vipservice did not stop cleanly")
}
