//! Our accountservice beside the Go original's vipservice (test-support's stand-in, which
//! declares and consumes `vip_queue` exactly as the P9 code does): with `amqp.compat: go-p9`
//! every VIP read answered 200 reaches it, whichever side declared the queue first, published
//! as ours always are (persistent, with a message id, confirmed).

use std::time::Duration;

use test_support::{GoVipService, amqp_url};

use crate::helpers::*;

const READS: usize = 10;

fn go_p9_config() -> TestConfig {
    let mut config = TestConfig::new();
    config.compat = "go-p9";
    config
}

/// `READS` VIP reads, all answered 200, and `before` + `READS` messages at Go's vipservice.
async fn reads_reach_go(app: &TestApp, go: &GoVipService, before: usize) {
    for _ in 0..READS {
        assert_eq!(app.get_account("10000").await.status(), 200);
    }
    let all = before + READS;
    let received = go.wait_for(all, Duration::from_secs(10)).await;
    assert_eq!(
        received.len(),
        all,
        "every VIP read reached Go's vipservice"
    );
    assert_eq!(
        message_ids(&received).len(),
        all,
        "each with an id of its own"
    );
    for message in &received {
        assert_eq!(message.properties.delivery_mode, Some(2), "persistent");
        let body = body(message);
        assert_eq!(body["accountId"], "10000", "{body}");
    }
}

#[tokio::test]
async fn with_go_s_vipservice_first_every_vip_read_reaches_it() {
    let config = go_p9_config();
    let go = GoVipService::start(&amqp_url(), &config.queue)
        .await
        .expect("Go's vipservice consumes");
    let app = spawn_app_with(config).await;
    reads_reach_go(&app, &go, 0).await;
    app.stop().await;
    go.close().await.expect("Go closes");
}

#[tokio::test]
async fn with_ours_first_go_s_vipservice_consumes_what_it_publishes() {
    let config = go_p9_config();
    let queue = config.queue.clone();
    let app = spawn_app_with(config).await;
    // Ours declares the queue on its first publish, before Go's vipservice is there.
    assert_eq!(app.get_account("10000").await.status(), 200);
    let go = GoVipService::start(&amqp_url(), &queue)
        .await
        .expect("Go's vipservice accepts our declaration");
    let first = go.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(first.len(), 1, "the read made before Go was there");
    reads_reach_go(&app, &go, 1).await;
    app.stop().await;
    go.close().await.expect("Go closes");
}
