//! `kill -9` while the broker is partitioned away: every VIP read answered 200 was durable,
//! and the next start publishes all of them.

use std::process::Stdio;
use std::time::Duration;

use test_support::{Broker, amqp_url};
use tokio::process::Command;
use tokio::time::Instant;

use crate::helpers::*;

const READS: usize = 300;

#[tokio::test]
async fn sigkill_with_the_broker_blackholed_loses_no_read_answered_200() {
    let broker = Broker::connect().await;
    let (mut config, proxy) = TestConfig::through_proxy().await;
    config.publish_timeout_ms = 1_000;
    config.server_port = free_port();
    config.write();
    declare_vip_queue(&broker, &config).await;
    let mut service = Command::new(env!("CARGO_BIN_EXE_accountservice"))
        .arg("--config-repo")
        .arg(config.dir.path())
        .args(["--profile", "it"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("accountservice starts");
    let base = format!("http://127.0.0.1:{}", config.server_port);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = http.get(format!("{base}/health")).send().await;
        if health.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "accountservice never healthy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    proxy.blackhole(true);
    for _ in 0..READS {
        let response = http
            .get(format!("{base}/accounts/10000"))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 200);
    }
    service.kill().await.expect("SIGKILL");
    proxy.blackhole(false);

    config.amqp_url = amqp_url();
    config.server_port = 0;
    let app = spawn_app_with(config).await;
    let delivered = broker
        .consume(&app.config.queue, READS, Duration::from_secs(30))
        .await;
    assert_eq!(
        message_ids(&delivered).len(),
        READS,
        "every read answered 200"
    );
    let config = app.stop().await;
    let late = broker.drain(&config.queue).await;
    let mut all = delivered;
    all.extend(late);
    assert_eq!(message_ids(&all).len(), READS, "and no other");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}
