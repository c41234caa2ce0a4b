//! The Spring Cloud Bus shared with the Go original's services (test-support's stand-in binds
//! and matches as the P9 code does): our refresh events and acks reach a Go service, and a
//! refresh sent the way the Go side's config server sends it reaches ours.

use std::time::Duration;

use common::config::RefreshEvent;
use common::messaging::{Messaging, OutgoingMessage};
use test_support::go_p9::publish_refresh;
use test_support::{Cleanup, GoBusListener, amqp_url, unique};
use tokio::time::Instant;

use super::{bus_client, info, start, write_config};

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn our_refreshes_and_acks_reach_a_go_service_and_a_go_side_refresh_reaches_ours() {
    let cleanup = Cleanup::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let bus_name = cleanup.exchange(unique("springCloudBus"));
    write_config(dir.path(), "before");
    let running = start(dir.path(), &bus_name).await;
    let go = GoBusListener::start(&amqp_url(), &bus_name, "testsvc")
        .await
        .expect("the Go service subscribes");
    let (client, bus, _acks) = bus_client(&bus_name).await;

    // Ours, as `bus-refresh testsvc` sends it: the Go service reloads (its name is in the
    // destination), ours reloads and acks, and the ack reaches the Go service too.
    write_config(dir.path(), "after ours");
    let refresh = RefreshEvent::new("bus-refresh:cli:0", Some("testsvc"));
    let message = OutgoingMessage::json("RefreshRemoteApplicationEvent", &refresh).expect("json");
    client
        .publish(&bus, &bus_name, message)
        .await
        .expect("published");
    let seen = go.wait_for_refresh(LIMIT).await.expect("Go reloads");
    assert_eq!(seen.id, refresh.id);
    let events = go.wait_for(2, LIMIT).await;
    assert!(
        events.iter().any(|m| m
            .event
            .as_ref()
            .is_ok_and(|e| e.kind == "AckRemoteApplicationEvent")),
        "our ack reached the Go service"
    );
    wait_for_server_name(&running.base, "after ours").await;

    // Go-side: the destination as Spring Cloud Config's monitor names it.
    write_config(dir.path(), "after go");
    publish_refresh(&amqp_url(), &bus_name, "testsvc:**")
        .await
        .expect("published the Go side's way");
    wait_for_server_name(&running.base, "after go").await;

    running.stop.send(()).expect("service running");
    running.stopped.await.expect("service task");
    go.close().await.expect("Go closes");
    client.close().await.expect("closes");
}

async fn wait_for_server_name(base: &str, name: &str) {
    let deadline = Instant::now() + LIMIT;
    while info(base).await["server_name"] != name {
        assert!(Instant::now() < deadline, "not reloaded to {name:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
