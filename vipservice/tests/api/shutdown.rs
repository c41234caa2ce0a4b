//! SIGTERM, as Swarm stops a container: in-flight messages are committed and acked, the rest
//! stay in the queue for the next instance.

use common::contract::vipservice::DUPLICATES_DROPPED;

use crate::helpers::{LIMIT, Setup};

#[tokio::test]
async fn sigterm_mid_stream_loses_nothing_and_a_restart_processes_nothing_twice() {
    const COUNT: usize = 2000;
    let setup = Setup::new().await;
    setup.publish_many("term", "10000", COUNT).await;
    let first = setup.spawn(20).await;
    setup
        .broker
        .wait_until("it is mid-stream", LIMIT, || async { first.got() >= 100 })
        .await;
    // Stops consuming, commits and acks what it holds; the rest stays in the queue.
    first.terminate().await;
    assert!(
        setup.broker.queue_depth(&setup.queue).await.unwrap_or(0) > 0,
        "it drained the queue before SIGTERM"
    );

    let second = setup.spawn(20).await;
    setup.wait_drained().await;
    // A message committed but not acked before the stop would come back as a duplicate.
    assert_eq!(second.metric(DUPLICATES_DROPPED).await, 0);
    second.terminate().await;
    assert_eq!(setup.offers("10000").await.len(), COUNT);
    setup.cleanup().await;
}
