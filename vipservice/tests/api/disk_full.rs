//! The offers database's disk fills up under load: the consumer holds what it has (nothing is
//! acked that is not committed, nothing goes to the dead-letter queue), `/health` names the
//! database and the cause, and once there is room again the service recovers by itself: every
//! notification is an offer, exactly once.

use common::contract::vipservice::OFFERS_MADE;
use test_support::SmallDisk;

use crate::helpers::Setup;

#[tokio::test]
#[ignore = "needs root: mounts a tmpfs (scripts/test.sh runs it when root)"]
async fn on_a_full_disk_nothing_is_acked_or_dead_lettered_and_the_service_recovers_by_itself() {
    const BEFORE: usize = 20;
    const DURING: usize = 2_000;
    const PREFETCH: u16 = 50;
    // Room enough, once emptied, for the write-ahead log the backlog makes before the
    // checkpoints catch up.
    let disk = SmallDisk::mount("16m");
    let mut setup = Setup::new().await;
    setup.use_database_url(disk.sqlite_url("offers.db"));
    let vip = setup.spawn(PREFETCH).await;
    setup.publish_many("before", "10000", BEFORE).await;
    vip.wait_metric(OFFERS_MADE, BEFORE as u64).await;

    disk.fill();
    setup.publish_many("during", "10000", DURING).await;
    vip.wait_healthy(false).await;
    let (_, health) = vip.health().await;
    let database = &health["database"];
    assert_eq!(database["up"], false, "{health}");
    assert!(
        database["error"]
            .as_str()
            .is_some_and(|e| e.contains("disk is full")),
        "names the cause: {health}"
    );
    assert!(
        database["url"]
            .as_str()
            .is_some_and(|u| u.contains("offers.db")),
        "names the database: {health}"
    );
    assert!(
        vip.metric(OFFERS_MADE).await < (BEFORE + DURING) as u64,
        "the disk filled before the backlog was recorded"
    );

    disk.empty();
    setup.wait_recovered(&vip, BEFORE + DURING).await;
    vip.terminate().await;
    assert_eq!(
        setup.offers("10000").await.len(),
        BEFORE + DURING,
        "one offer per notification"
    );
    setup.cleanup().await;
}
