//! vipservice: consumes VIP notifications and records offers, exactly once per message.

use common::bootstrap::{Launch, Service, shutdown_signal};
use vipservice::App;
use vipservice::settings::VipSettings;

fn main() -> anyhow::Result<()> {
    common::bootstrap::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let launch = Launch::from_command_line("vipservice", env!("CARGO_PKG_VERSION"));
    let mut service = Service::<VipSettings>::start(launch).await?;
    let app = App::start(&service).await?;
    service.serve(app.routes(), shutdown_signal()).await?;
    // Stop consuming and let in-flight handlers commit and ack; only then close messaging, the
    // writer and the database.
    app.stop_consuming().await;
    service.close().await?;
    app.close().await;
    Ok(())
}
