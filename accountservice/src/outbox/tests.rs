//! The outbox table, the writer and their failures, on a real SQLite file and a real
//! PostgreSQL database.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use test_support::{SmallDisk, TestDatabase};
use tokio::sync::{Notify, mpsc};

use super::db::{Changes, OutboxDb};
use super::{AppendError, OutboxEntry, OutboxWriter};
use crate::settings::OutboxDatabaseSettings;

/// How long anything a test waits for may take.
const LIMIT: Duration = Duration::from_secs(30);

fn entry(id: &str) -> OutboxEntry {
    OutboxEntry {
        message_id: id.to_owned(),
        body: format!(r#"{{"accountId":"10000","readAt":"{id}"}}"#),
        trace_parent: None,
    }
}

fn ids(entries: &[OutboxEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.message_id.as_str()).collect()
}

async fn open(database: &TestDatabase) -> OutboxDb {
    OutboxDb::connect(&OutboxDatabaseSettings::at(database.url()))
        .await
        .unwrap_or_else(|e| panic!("{}: {}", database.backend(), e.with_causes()))
}

#[tokio::test]
async fn entries_leased_to_a_replica_are_claimed_by_another_only_once_their_lease_passed() {
    for database in TestDatabase::both().await {
        let backend = database.backend();
        let db = open(&database).await;
        let now = Utc::now();
        let lease = now + TimeDelta::seconds(10);
        let leased = [entry("a"), entry("b")];
        let changes = Changes {
            appended: &leased,
            leased_until: lease.timestamp_micros(),
            ..Changes::default()
        };
        db.apply("one", &changes, now).await.expect("appended");
        // Appending the same ids again keeps them as they are.
        db.apply("one", &changes, now)
            .await
            .expect("appended again");
        assert_eq!(db.depth().await.unwrap().0, 2, "{backend}");

        let claimed = db.claim("two", 10, now, lease).await.unwrap();
        assert!(claimed.is_empty(), "{backend}: leased to one: {claimed:?}");
        let later = lease + TimeDelta::seconds(1);
        let claimed = db
            .claim("two", 10, later, later + TimeDelta::seconds(10))
            .await
            .unwrap();
        assert_eq!(ids(&claimed), ["a", "b"], "{backend}: oldest first");
        assert_eq!(claimed[0], entry("a"), "{backend}: body as written");
        let again = db.claim("three", 10, later, later).await.unwrap();
        assert!(again.is_empty(), "{backend}: claimed by two already");
    }
}

#[tokio::test]
async fn confirmed_entries_go_failed_ones_fall_due_and_shutdown_releases_the_rest() {
    for database in TestDatabase::both().await {
        let backend = database.backend();
        let db = open(&database).await;
        let now = Utc::now();
        let lease = (now + TimeDelta::seconds(60)).timestamp_micros();
        let appended = [entry("1"), entry("2"), entry("3"), entry("4")];
        db.apply(
            "me",
            &Changes {
                appended: &appended,
                leased_until: lease,
                ..Changes::default()
            },
            now,
        )
        .await
        .unwrap();
        let confirmed = ["1".to_owned()];
        let failed = ["2".to_owned()];
        db.apply(
            "me",
            &Changes {
                confirmed: &confirmed,
                failed: &failed,
                ..Changes::default()
            },
            now,
        )
        .await
        .unwrap();
        assert_eq!(db.depth().await.unwrap().0, 3, "{backend}");
        let minute = now + TimeDelta::seconds(60);
        let due = db.claim("other", 10, now, minute).await.unwrap();
        assert_eq!(ids(&due), ["2"], "{backend}: only the failed one is due");

        assert_eq!(db.release_owned("me").await.unwrap(), 2, "{backend}");
        let due = db.claim("other", 10, now, minute).await.unwrap();
        assert_eq!(ids(&due), ["3", "4"], "{backend}: released at shutdown");
        let (depth, oldest) = db.depth().await.unwrap();
        assert_eq!(depth, 3, "{backend}: claiming removes nothing");
        assert!(
            oldest.is_some_and(|oldest| oldest <= Utc::now()),
            "{backend}"
        );
        db.close().await;
    }
}

/// A writer on `db` whose relay side the test plays.
fn writer(db: Arc<OutboxDb>) -> (OutboxWriter, mpsc::Receiver<Vec<OutboxEntry>>) {
    let (fresh, batches) = mpsc::channel(4);
    let writer = OutboxWriter::start(
        db,
        "test".into(),
        Duration::from_secs(60),
        fresh,
        Arc::new(Notify::new()),
    );
    (writer, batches)
}

#[tokio::test]
async fn an_append_returns_once_committed_and_its_entry_goes_to_the_relay() {
    for database in TestDatabase::both().await {
        let backend = database.backend();
        let db = Arc::new(open(&database).await);
        let (writer, mut batches) = writer(db.clone());
        let appends: Vec<_> = (0..50)
            .map(|i| writer.append(entry(&format!("m{i:02}"))))
            .collect();
        for result in futures_util::future::join_all(appends).await {
            result.unwrap_or_else(|e| panic!("{backend}: {e}"));
        }
        assert_eq!(db.depth().await.unwrap().0, 50, "{backend}: all committed");
        let mut handed = Vec::new();
        while handed.len() < 50 {
            let batch = tokio::time::timeout(LIMIT, batches.recv()).await;
            handed.extend(batch.expect("in time").expect("a batch"));
        }
        handed.sort_by(|a, b| a.message_id.cmp(&b.message_id));
        assert_eq!(handed[7], entry("m07"), "{backend}");
        writer.close().await;
    }
}

#[tokio::test]
#[ignore = "needs root: mounts a tmpfs (scripts/test.sh runs it when root)"]
async fn a_full_disk_refuses_appends_says_why_and_recovers_by_itself() {
    let disk = SmallDisk::mount("4m");
    let db = Arc::new(
        OutboxDb::connect(&OutboxDatabaseSettings::at(disk.sqlite_url("outbox.db")))
            .await
            .expect("opens"),
    );
    let (writer, _batches) = writer(db.clone());
    let down = writer.down();
    writer.append(entry("before")).await.expect("room yet");

    disk.fill();
    let mut refused = 0;
    for i in 0..2_000 {
        match writer.append(entry(&format!("full-{i:04}"))).await {
            Ok(()) => {}
            Err(AppendError::Unwritable(cause)) => {
                refused += 1;
                assert!(cause.contains("full"), "the cause names it: {cause}");
                assert!(cause.contains("outbox.db"), "and the database: {cause}");
                break;
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(refused, 1, "the full disk was noticed");
    assert!(down.borrow().is_some(), "the writer says it is down");

    disk.empty();
    let mut down = down;
    tokio::time::timeout(LIMIT, down.wait_for(Option::is_none))
        .await
        .expect("recovered in time, with nobody writing")
        .expect("the writer runs");
    writer.append(entry("after")).await.expect("writes again");
    let due = db
        .claim("test", 10_000, Utc::now() + TimeDelta::hours(1), Utc::now())
        .await
        .expect("readable");
    let found = ids(&due);
    assert!(
        found.contains(&"before") && found.contains(&"after"),
        "nothing accepted was lost"
    );
    writer.close().await;
    db.close().await;
}
