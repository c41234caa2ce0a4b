//! The offers database and its writer, on a real SQLite file and a real PostgreSQL database
//! (each test makes its own and drops it): every test runs on both backends.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::notification::{self, VipNotification as Notification};
use test_support::{TcpProxy, TestDatabase};
use tokio::time::{Instant, timeout};

use super::*;
use crate::settings::OffersDatabaseSettings;

/// How long anything a test waits for may take.
const LIMIT: Duration = Duration::from_secs(30);

fn settings(url: &str) -> OffersDatabaseSettings {
    OffersDatabaseSettings::at(url)
}

/// One replica's view of a database: its own pool and writer.
struct Replica {
    db: Arc<OfferDb>,
    writer: OfferWriter,
}

async fn replica(url: &str, rule: OfferRule) -> Replica {
    let db = Arc::new(OfferDb::connect(&settings(url)).await.expect("connects"));
    let writer = OfferWriter::start(db.clone(), rule, DEFAULT_MAX_BATCH);
    Replica { db, writer }
}

fn at(millis: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 22, 0, 0).unwrap() + chrono::Duration::milliseconds(millis)
}

fn notification(account_id: &str, read_at: DateTime<Utc>) -> Notification {
    Notification {
        account_id: account_id.into(),
        read_at,
    }
}

fn fixture_body(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../common/tests/fixtures/vip-notifications")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn message_ids(offers: &[Offer]) -> Vec<&str> {
    offers.iter().map(|o| o.message_id.as_str()).collect()
}

fn with_interval(min_interval: Duration) -> OfferRule {
    OfferRule {
        min_interval,
        ..OfferRule::default()
    }
}

#[tokio::test]
async fn notifications_in_both_time_formats_become_offers() {
    for database in TestDatabase::both().await {
        let r = replica(database.url(), OfferRule::default()).await;
        let go = notification::decode(&fixture_body("go-original.json")).unwrap();
        let rfc = notification::decode(&fixture_body("rfc3339.json")).unwrap();

        assert_eq!(
            r.writer.record("m-go", go.clone()).await.unwrap(),
            Outcome::Offered
        );
        assert_eq!(
            r.writer.record("m-rfc", rfc.clone()).await.unwrap(),
            Outcome::Offered
        );

        let offers = r.db.offers_for("10000", 100).await.unwrap();
        let backend = database.backend();
        assert_eq!(
            message_ids(&offers),
            ["m-rfc", "m-go"],
            "{backend}: newest first"
        );
        // Instants are stored to the microsecond.
        assert_eq!(
            offers[0].read_at.timestamp_micros(),
            rfc.read_at.timestamp_micros()
        );
        assert_eq!(
            offers[1].read_at.timestamp_micros(),
            go.read_at.timestamp_micros()
        );
        assert_eq!(offers[0].text, OfferRule::default().text);
        assert!(r.db.offers_for("10001", 100).await.unwrap().is_empty());
        assert_eq!(
            r.db.offers_for("10000", 1).await.unwrap().len(),
            1,
            "{backend}: limit"
        );
        r.db.ping().await.unwrap();
    }
}

#[tokio::test]
async fn a_duplicated_message_id_gives_one_offer_in_one_group_and_across_groups() {
    for database in TestDatabase::both().await {
        let r = replica(database.url(), OfferRule::default()).await;
        let n = notification("10000", at(0));
        let (first, twin) = tokio::join!(
            r.writer.record("m-1", n.clone()),
            r.writer.record("m-1", n.clone())
        );
        let mut outcomes = [first.unwrap(), twin.unwrap()];
        outcomes.sort_by_key(|o| *o == Outcome::Duplicate);
        assert_eq!(outcomes, [Outcome::Offered, Outcome::Duplicate]);
        assert_eq!(r.writer.record("m-1", n).await.unwrap(), Outcome::Duplicate);
        let offers = r.db.offers_for("10000", 100).await.unwrap();
        assert_eq!(message_ids(&offers), ["m-1"], "{}", database.backend());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_id_seen_by_two_replicas_at_once_is_one_offer() {
    const COUNT: usize = 300;
    for database in TestDatabase::both().await {
        let a = Arc::new(replica(database.url(), OfferRule::default()).await);
        let b = Arc::new(replica(database.url(), OfferRule::default()).await);
        let mut tasks = Vec::new();
        for replica in [a.clone(), b.clone()] {
            let notifications = (0..COUNT)
                .map(|i| (format!("m-{i}"), notification("10000", at(i as i64))))
                .collect();
            tasks.push(tokio::spawn(record_at_once(replica, notifications)));
        }
        let mut offered = 0;
        let mut duplicates = 0;
        for task in tasks {
            for outcome in task.await.unwrap() {
                match outcome {
                    Outcome::Offered => offered += 1,
                    Outcome::Duplicate => duplicates += 1,
                    Outcome::NotOffered => panic!("no rule forbids an offer here"),
                }
            }
        }
        let backend = database.backend();
        assert_eq!((offered, duplicates), (COUNT, COUNT), "{backend}");
        let offers = a.db.offers_for("10000", 1000).await.unwrap();
        assert_eq!(offers.len(), COUNT, "{backend}: one offer per message id");
        assert_eq!(
            offers,
            b.db.offers_for("10000", 1000).await.unwrap(),
            "{backend}: both replicas answer the same"
        );
    }
}

/// Records each notification from a task of its own, all at once, as the consumer's handler
/// tasks do; the outcomes come in the order given.
async fn record_at_once(
    replica: Arc<Replica>,
    notifications: Vec<(String, Notification)>,
) -> Vec<Outcome> {
    let tasks: Vec<_> = notifications
        .into_iter()
        .map(|(id, n)| {
            let replica = replica.clone();
            tokio::spawn(async move { replica.writer.record(id, n).await })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("the task ran").expect("recorded"));
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_racing_on_one_account_make_one_offer_inside_the_interval() {
    for database in TestDatabase::both().await {
        let rule = with_interval(Duration::from_secs(60));
        let a = Arc::new(replica(database.url(), rule.clone()).await);
        let b = Arc::new(replica(database.url(), rule).await);
        // Ten notifications of one account within a second, half at each replica, at once.
        let mut tasks = Vec::new();
        for (k, replica) in [a.clone(), b.clone()].into_iter().enumerate() {
            let notifications = (0..5)
                .map(|i| {
                    let ms = (2 * i + k) as i64 * 100;
                    (format!("race-{k}-{i}"), notification("10000", at(ms)))
                })
                .collect();
            tasks.push(tokio::spawn(record_at_once(replica, notifications)));
        }
        let mut offered = 0;
        for task in tasks {
            offered += task
                .await
                .unwrap()
                .into_iter()
                .filter(|o| *o == Outcome::Offered)
                .count();
        }
        let backend = database.backend();
        assert_eq!(offered, 1, "{backend}: one offer inside the interval");
        assert_eq!(
            a.db.offers_for("10000", 100).await.unwrap().len(),
            1,
            "{backend}"
        );
        // A minute later by `readAt`, the next one is an offer again.
        let later = a
            .writer
            .record("later", notification("10000", at(60_900)))
            .await;
        assert_eq!(later.unwrap(), Outcome::Offered, "{backend}");
    }
}

#[tokio::test]
async fn a_refreshed_rule_applies_to_later_notifications() {
    for database in TestDatabase::both().await {
        let r = replica(database.url(), OfferRule::default()).await;
        assert_eq!(
            r.writer
                .record("a", notification("10000", at(0)))
                .await
                .unwrap(),
            Outcome::Offered
        );
        assert_eq!(
            r.writer
                .record("b", notification("10000", at(1)))
                .await
                .unwrap(),
            Outcome::Offered
        );
        r.writer.set_rule(OfferRule {
            text: "New text".into(),
            min_interval: Duration::from_secs(3600),
        });
        let backend = database.backend();
        assert_eq!(
            r.writer
                .record("c", notification("10000", at(2)))
                .await
                .unwrap(),
            Outcome::NotOffered,
            "{backend}: inside the new interval since the last offer, made under the old rule"
        );
        let d = notification("10000", at(3_600_001));
        assert_eq!(
            r.writer.record("d", d).await.unwrap(),
            Outcome::Offered,
            "{backend}"
        );
        let offers = r.db.offers_for("10000", 100).await.unwrap();
        assert_eq!(message_ids(&offers), ["d", "b", "a"], "{backend}");
        assert_eq!(offers[0].text, "New text");
    }
}

#[tokio::test]
async fn processed_ids_past_their_retention_are_pruned() {
    for database in TestDatabase::both().await {
        let r = replica(database.url(), OfferRule::default()).await;
        r.writer
            .record("old", notification("10000", at(0)))
            .await
            .unwrap();
        let backend = database.backend();
        assert_eq!(
            r.db.prune_processed(Utc::now() - chrono::Duration::hours(1))
                .await
                .unwrap(),
            0,
            "{backend}: a fresh id is kept"
        );
        assert_eq!(
            r.db.prune_processed(Utc::now() + chrono::Duration::seconds(1))
                .await
                .unwrap(),
            1,
            "{backend}"
        );
        // The offer stays, and its id is still not offered twice (the offers' own key).
        let again = r
            .writer
            .record("old", notification("10000", at(0)))
            .await
            .unwrap();
        assert_eq!(
            again,
            Outcome::Offered,
            "{backend}: a forgotten id is processed again"
        );
        assert_eq!(
            r.db.offers_for("10000", 100).await.unwrap().len(),
            1,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn startup_on_an_existing_database_applies_no_migration_twice() {
    for database in TestDatabase::both().await {
        let first = replica(database.url(), OfferRule::default()).await;
        first
            .writer
            .record("kept", notification("10000", at(0)))
            .await
            .unwrap();
        let again = settings(database.url());
        let (a, b) = tokio::join!(OfferDb::connect(&again), OfferDb::connect(&again));
        let backend = database.backend();
        let (a, _b) = (a.expect(backend), b.expect(backend));
        assert_eq!(
            a.offers_for("10000", 100).await.unwrap().len(),
            1,
            "{backend}"
        );
    }
}

/// A replica whose PostgreSQL went away (its proxy cut every connection and refuses new ones)
/// while one record was on its way, once the writer noticed.
struct Away {
    _database: TestDatabase,
    proxy: TcpProxy,
    db: Arc<OfferDb>,
    writer: Arc<OfferWriter>,
    down: DatabaseDown,
    waiting: tokio::task::JoinHandle<Result<Outcome, RecordError>>,
}

async fn away_with_a_record_waiting() -> Away {
    let database = TestDatabase::postgres().await;
    let proxy = TcpProxy::start(database.server_address().expect("a server")).await;
    let url = database.url_via(proxy.address()).expect("a proxied URL");
    let r = replica(&url, OfferRule::default()).await;
    let mut down = r.writer.database_down();
    proxy.refuse(true);
    proxy.cut();
    let writer = Arc::new(r.writer);
    let waiting = tokio::spawn({
        let writer = writer.clone();
        async move { writer.record("held", notification("10000", at(0))).await }
    });
    timeout(LIMIT, down.wait_for(Option::is_some))
        .await
        .expect("the writer notices the database is away")
        .expect("the writer runs");
    Away {
        _database: database,
        proxy,
        db: r.db,
        writer,
        down,
        waiting,
    }
}

#[tokio::test]
async fn while_the_database_is_away_records_wait_and_then_commit() {
    let away = away_with_a_record_waiting().await;
    assert!(
        !away.waiting.is_finished(),
        "the record waits for the database"
    );
    assert!(away.db.ping().await.is_err());

    away.proxy.refuse(false);
    let outcome = timeout(LIMIT, away.waiting)
        .await
        .expect("committed once back");
    assert_eq!(outcome.unwrap().unwrap(), Outcome::Offered);
    assert!(
        away.down.borrow().is_none(),
        "the writer says the database answers again"
    );
    assert_eq!(away.db.offers_for("10000", 100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_stop_while_the_database_is_away_gives_the_waiting_records_back() {
    let away = away_with_a_record_waiting().await;
    let stopped = Instant::now();
    away.writer.stop_waiting();
    let outcome = timeout(LIMIT, away.waiting)
        .await
        .expect("given back")
        .unwrap();
    assert!(
        matches!(outcome, Err(RecordError::Unavailable(_))),
        "{outcome:?}"
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopped.elapsed()
    );
}

#[tokio::test]
async fn a_wrong_url_is_an_error_naming_the_setting_and_hiding_the_password() {
    let error = OfferDb::connect(&settings("postgres://u:secret@127.0.0.1:1/x"))
        .await
        .expect_err("nothing listens on port 1");
    let text = error.with_causes();
    assert!(text.contains("postgres://u:***@127.0.0.1:1/x"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    assert!(
        error.is_unavailable(),
        "a refused connection may work later: {text}"
    );

    let missing = settings("sqlite:///proc/no/such/folder/offers.db?mode=rwc");
    let error = OfferDb::connect(&missing)
        .await
        .expect_err("cannot create the folder");
    let text = error.with_causes();
    assert!(text.contains("/proc/no/such/folder"), "{text}");
    assert!(text.contains("offers.database_url"), "{text}");
}

#[tokio::test]
async fn a_password_file_completes_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    std::fs::write(&file, "s3cret\n").unwrap();
    let mut with_file = OffersDatabaseSettings::at("postgres://vipservice@db:5432/offers");
    with_file.database_password_file = Some(file);
    assert_eq!(
        with_file.url_with_password().unwrap(),
        "postgres://vipservice:s3cret@db:5432/offers"
    );
    let mut missing = with_file;
    missing.database_password_file = Some(dir.path().join("absent"));
    let text = missing.url_with_password().unwrap_err().with_causes();
    assert!(
        text.contains("absent") && text.contains("offers.database_password_file"),
        "{text}"
    );
}
