//! The offer database and its writer, on real redb files in temporary directories.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use common::notification::{self, VipNotification as Notification};

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    db: Arc<OfferDb>,
    writer: OfferWriter,
}

fn start(rule: OfferRule) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("offers.redb");
    let (db, writer) = open(&path, rule);
    Fixture {
        _dir: dir,
        path,
        db,
        writer,
    }
}

fn open(path: &Path, rule: OfferRule) -> (Arc<OfferDb>, OfferWriter) {
    let db = Arc::new(OfferDb::open(path).unwrap());
    let writer = OfferWriter::start(Arc::clone(&db), rule, DEFAULT_MAX_BATCH).unwrap();
    (db, writer)
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 22, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

fn notification(account_id: &str, read_at: DateTime<Utc>) -> Notification {
    Notification {
        account_id: account_id.into(),
        read_at,
    }
}

fn fixture_body(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/vip-notifications")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn message_ids(offers: &[Offer]) -> Vec<&str> {
    offers.iter().map(|o| o.message_id.as_str()).collect()
}

#[tokio::test]
async fn notifications_in_both_time_formats_become_offers() {
    let f = start(OfferRule::default());
    let go = notification::decode(&fixture_body("go-original.json")).unwrap();
    let rfc = notification::decode(&fixture_body("rfc3339.json")).unwrap();

    assert_eq!(
        f.writer.record("m-go", go.clone()).await.unwrap(),
        Outcome::Offered
    );
    assert_eq!(
        f.writer.record("m-rfc", rfc.clone()).await.unwrap(),
        Outcome::Offered
    );

    let offers = f.db.offers_for("10000").unwrap();
    assert_eq!(message_ids(&offers), ["m-rfc", "m-go"], "newest first");
    assert_eq!(offers[0].read_at, rfc.read_at);
    assert_eq!(offers[1].read_at, go.read_at);
    assert_eq!(offers[0].text, OfferRule::default().text);
    assert_eq!(
        f.db.counts().unwrap(),
        Counts {
            processed: 2,
            offers: 2,
            no_offers: 0,
            duplicates: 0
        }
    );
    assert!(f.db.offers_for("10001").unwrap().is_empty());
    assert!(f.db.is_usable());
}

#[tokio::test]
async fn a_duplicated_message_id_gives_one_offer() {
    let f = start(OfferRule::default());
    let n = notification("10000", at(0));
    assert_eq!(
        f.writer.record("m1", n.clone()).await.unwrap(),
        Outcome::Offered
    );
    assert_eq!(
        f.writer.record("m1", n.clone()).await.unwrap(),
        Outcome::Duplicate
    );
    // Even with a different body, the message id decides.
    let other = notification("10001", at(5));
    assert_eq!(
        f.writer.record("m1", other).await.unwrap(),
        Outcome::Duplicate
    );

    assert_eq!(f.db.offers_for("10000").unwrap().len(), 1);
    assert!(f.db.offers_for("10001").unwrap().is_empty());
    let counts = f.db.counts().unwrap();
    assert_eq!((counts.offers, counts.duplicates), (1, 2));
}

#[test]
fn a_message_id_twice_in_one_group_is_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = OfferDb::open(dir.path().join("offers.redb")).unwrap();
    let n = notification("10000", at(0));
    let outcomes = db
        .record_batch([("d", &n), ("e", &n), ("d", &n)], &OfferRule::default())
        .unwrap();
    assert_eq!(
        outcomes,
        [Outcome::Offered, Outcome::Offered, Outcome::Duplicate]
    );
    assert_eq!(db.committed_batches(), 1);
    assert_eq!(db.offers_for("10000").unwrap().len(), 2);
}

#[tokio::test]
async fn the_minimum_interval_records_a_no_offer() {
    let rule = OfferRule {
        min_interval: Duration::from_secs(60),
        ..OfferRule::default()
    };
    let f = start(rule);
    let record = |id: &'static str, account: &'static str, seconds| {
        f.writer.record(id, notification(account, at(seconds)))
    };
    assert_eq!(record("a1", "10000", 0).await.unwrap(), Outcome::Offered);
    assert_eq!(record("a2", "10000", 30).await.unwrap(), Outcome::NoOffer);
    assert_eq!(
        record("b1", "10001", 31).await.unwrap(),
        Outcome::Offered,
        "another account"
    );
    assert_eq!(record("a3", "10000", 60).await.unwrap(), Outcome::Offered);
    assert_eq!(record("a4", "10000", 119).await.unwrap(), Outcome::NoOffer);

    assert_eq!(
        message_ids(&f.db.offers_for("10000").unwrap()),
        ["a3", "a1"]
    );
    let decision = f.db.decision("a2").unwrap().unwrap();
    assert_eq!(decision.account_id, "10000");
    assert!(!decision.offered);
    assert!(f.db.decision("a3").unwrap().unwrap().offered);
    assert_eq!(f.db.decision("never-seen").unwrap(), None);
    assert_eq!(
        f.db.counts().unwrap(),
        Counts {
            processed: 5,
            offers: 3,
            no_offers: 2,
            duplicates: 0
        }
    );
}

#[tokio::test]
async fn a_refreshed_rule_applies_to_later_notifications() {
    let f = start(OfferRule::default());
    f.writer
        .record("before", notification("10000", at(0)))
        .await
        .unwrap();
    let rule = OfferRule {
        text: "Double points this week".into(),
        min_interval: Duration::from_secs(3600),
    };
    f.writer.set_rule(rule.clone());
    assert_eq!(f.writer.rule(), rule);
    let outcome = f
        .writer
        .record("after", notification("10000", at(10)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::NoOffer, "the new interval applies");
    f.writer
        .record("new-account", notification("10002", at(10)))
        .await
        .unwrap();
    assert_eq!(
        f.db.offers_for("10002").unwrap()[0].text,
        "Double points this week"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_records_are_committed_in_groups() {
    let f = start(OfferRule::default());
    let writer = Arc::new(f.writer);
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                let account = format!("{}", 10_000 + i % 10);
                writer
                    .record(format!("msg-{i}"), notification(&account, at(i)))
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), Outcome::Offered);
    }

    let counts = f.db.counts().unwrap();
    assert_eq!((counts.processed, counts.offers), (1000, 1000));
    let per_account: usize = (0..10)
        .map(|i| f.db.offers_for(&(10_000 + i).to_string()).unwrap().len())
        .sum();
    assert_eq!(per_account, 1000);
    let batches = f.db.committed_batches();
    assert!(
        batches <= 100,
        "1000 notifications took {batches} transactions"
    );
}

#[tokio::test]
async fn data_survives_reopening() {
    let f = start(OfferRule::default());
    f.writer
        .record("kept", notification("10000", at(0)))
        .await
        .unwrap();
    let Fixture {
        _dir,
        path,
        db,
        writer,
    } = f;
    writer.close().await;
    let counts = db.counts().unwrap();
    drop(db);

    let (db, writer) = open(&path, OfferRule::default());
    assert_eq!(db.counts().unwrap(), counts);
    assert_eq!(message_ids(&db.offers_for("10000").unwrap()), ["kept"]);
    let outcome = writer
        .record("kept", notification("10000", at(0)))
        .await
        .unwrap();
    assert_eq!(outcome, Outcome::Duplicate, "a redelivery after a restart");
    assert_eq!(db.offers_for("10000").unwrap().len(), 1);
}

#[test]
fn an_unopenable_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.redb");
    std::fs::write(&path, b"definitely not a redb database file").unwrap();
    let err = OfferDb::open(&path).unwrap_err();
    assert!(matches!(err, OfferError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("garbage.redb"), "{err}");
}
