//! The offer database and its writer, on real redb files in temporary directories.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::db::{Step, StepResult};
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
        .join("../common/tests/fixtures/vip-notifications")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Applies a ledger entry of `replica` claiming `ids`, at the writer's next offset, and
/// returns what it decided.
async fn order(f: &Fixture, replica: &str, ids: &[&str]) -> Resolved {
    let offset = f.db.ledger_next_offset().unwrap().unwrap_or(0);
    let entry = Ordered {
        replica: replica.to_owned(),
        message_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
        offset,
    };
    f.writer.apply(entry).await.unwrap().await.unwrap().unwrap()
}

/// Claims a notification and orders this replica's claim at once: what a lone replica does.
async fn offer(f: &Fixture, id: &str, n: Notification) -> Resolved {
    assert_eq!(f.writer.record(id, n).await.unwrap(), Outcome::Claimed);
    order(f, f.db.replica(), &[id]).await
}

const MADE: Resolved = Resolved {
    offers: 1,
    no_offers: 0,
    lost: 0,
};
const NOT_MADE: Resolved = Resolved {
    offers: 0,
    no_offers: 1,
    lost: 0,
};

fn message_ids(offers: &[Offer]) -> Vec<&str> {
    offers.iter().map(|o| o.message_id.as_str()).collect()
}

#[tokio::test]
async fn notifications_in_both_time_formats_become_offers() {
    let f = start(OfferRule::default());
    let go = notification::decode(&fixture_body("go-original.json")).unwrap();
    let rfc = notification::decode(&fixture_body("rfc3339.json")).unwrap();

    assert_eq!(offer(&f, "m-go", go.clone()).await, MADE);
    assert_eq!(offer(&f, "m-rfc", rfc.clone()).await, MADE);

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
            duplicates: 0,
            pending: 0,
        }
    );
    assert!(f.db.offers_for("10001").unwrap().is_empty());
    assert!(f.db.is_usable());
}

#[tokio::test]
async fn a_claim_is_no_offer_until_the_ledger_orders_it() {
    let f = start(OfferRule::default());
    let n = notification("10000", at(0));
    assert_eq!(
        f.writer.record("m1", n.clone()).await.unwrap(),
        Outcome::Claimed
    );
    assert!(f.db.offers_for("10000").unwrap().is_empty());
    assert_eq!(f.db.pending_claims().unwrap(), ["m1"]);
    // Delivered again before its entry was read: claimed still, so it is announced again.
    assert_eq!(
        f.writer.record("m1", n.clone()).await.unwrap(),
        Outcome::Claimed
    );

    assert_eq!(order(&f, f.db.replica(), &["m1"]).await, MADE);
    assert_eq!(message_ids(&f.db.offers_for("10000").unwrap()), ["m1"]);
    assert!(f.db.pending_claims().unwrap().is_empty());
    // Announced twice: the second entry finds the id decided and changes nothing.
    assert_eq!(
        order(&f, f.db.replica(), &["m1"]).await,
        Resolved::default()
    );
    assert_eq!(f.db.offers_for("10000").unwrap().len(), 1);
}

#[tokio::test]
async fn a_duplicated_message_id_gives_one_offer() {
    let f = start(OfferRule::default());
    let n = notification("10000", at(0));
    assert_eq!(offer(&f, "m1", n.clone()).await, MADE);
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

#[tokio::test]
async fn another_replica_s_earlier_claim_wins_and_ours_is_dropped() {
    let f = start(OfferRule::default());
    let n = notification("10000", at(0));
    // Both replicas claimed "twice" (a redelivery after a crash, say); the other's entry is
    // first in the ledger.
    assert_eq!(
        f.writer.record("twice", n.clone()).await.unwrap(),
        Outcome::Claimed
    );
    assert_eq!(
        f.writer.record("once", n.clone()).await.unwrap(),
        Outcome::Claimed
    );
    let lost = Resolved {
        lost: 1,
        ..Resolved::default()
    };
    assert_eq!(order(&f, "other-replica", &["twice"]).await, lost);
    assert_eq!(
        order(&f, f.db.replica(), &["twice", "once"]).await,
        MADE,
        "only the claim that came first is an offer"
    );
    assert_eq!(message_ids(&f.db.offers_for("10000").unwrap()), ["once"]);
    assert_eq!(f.db.decision("twice").unwrap(), None);
    // A later delivery of an id another replica won is a duplicate at once.
    assert_eq!(
        f.writer.record("twice", n.clone()).await.unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(
        order(&f, "other-replica", &["theirs"]).await,
        Resolved::default()
    );
    assert_eq!(
        f.writer.record("theirs", n).await.unwrap(),
        Outcome::Duplicate
    );
    let counts = f.db.counts().unwrap();
    assert_eq!(
        (counts.offers, counts.duplicates, counts.pending),
        (1, 3, 0)
    );
}

#[tokio::test]
async fn entries_read_again_after_a_reconnect_change_nothing() {
    let f = start(OfferRule::default());
    let n = notification("10000", at(0));
    assert_eq!(f.writer.record("m", n).await.unwrap(), Outcome::Claimed);
    assert_eq!(
        order(&f, "other-replica", &["x"]).await,
        Resolved::default()
    );
    // Offset 0 again, now claiming "m" for another replica: already applied, so ignored.
    let replayed = Ordered {
        replica: "other-replica".into(),
        message_ids: vec!["m".into()],
        offset: 0,
    };
    let resolved = f
        .writer
        .apply(replayed)
        .await
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resolved, Resolved::default());
    assert_eq!(f.db.ledger_next_offset().unwrap(), Some(1));
    assert_eq!(order(&f, f.db.replica(), &["m"]).await, MADE);
}

#[test]
fn a_message_id_twice_in_one_group_is_claimed_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = OfferDb::open(dir.path().join("offers.redb")).unwrap();
    let n = notification("10000", at(0));
    let record = |message_id| Step::Record {
        message_id,
        notification: &n,
    };
    let entry = Ordered {
        replica: db.replica().to_owned(),
        message_ids: vec!["d".into(), "e".into()],
        offset: 0,
    };
    let results = db
        .commit(
            [record("d"), record("e"), Step::Apply(&entry), record("d")],
            &OfferRule::default(),
        )
        .unwrap();
    let made_two = Resolved {
        offers: 2,
        ..Resolved::default()
    };
    assert_eq!(
        results,
        [
            StepResult::Recorded(Outcome::Claimed),
            StepResult::Recorded(Outcome::Claimed),
            StepResult::Applied(made_two),
            StepResult::Recorded(Outcome::Duplicate),
        ]
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
    let offer_at = |id: &'static str, account: &'static str, seconds| {
        offer(&f, id, notification(account, at(seconds)))
    };
    assert_eq!(offer_at("a1", "10000", 0).await, MADE);
    assert_eq!(offer_at("a2", "10000", 30).await, NOT_MADE);
    assert_eq!(offer_at("b1", "10001", 31).await, MADE, "another account");
    assert_eq!(offer_at("a3", "10000", 60).await, MADE);
    assert_eq!(offer_at("a4", "10000", 119).await, NOT_MADE);

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
            duplicates: 0,
            pending: 0,
        }
    );
}

#[tokio::test]
async fn a_refreshed_rule_applies_to_later_notifications() {
    let f = start(OfferRule::default());
    assert_eq!(
        offer(&f, "before", notification("10000", at(0))).await,
        MADE
    );
    let rule = OfferRule {
        text: "Double points this week".into(),
        min_interval: Duration::from_secs(3600),
    };
    f.writer.set_rule(rule.clone());
    assert_eq!(f.writer.rule(), rule);
    let resolved = offer(&f, "after", notification("10000", at(10))).await;
    assert_eq!(resolved, NOT_MADE, "the new interval applies");
    assert_eq!(
        offer(&f, "new-account", notification("10002", at(10))).await,
        MADE
    );
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
        assert_eq!(task.await.unwrap().unwrap(), Outcome::Claimed);
    }
    let batches = f.db.committed_batches();
    assert!(
        batches <= 100,
        "1000 notifications took {batches} transactions"
    );

    let entry = Ordered {
        replica: f.db.replica().to_owned(),
        message_ids: (0..1000).map(|i| format!("msg-{i}")).collect(),
        offset: 0,
    };
    let resolved = writer.apply(entry).await.unwrap().await.unwrap().unwrap();
    assert_eq!(resolved.offers, 1000);
    let counts = f.db.counts().unwrap();
    assert_eq!((counts.processed, counts.offers), (1000, 1000));
    let per_account: usize = (0..10)
        .map(|i| f.db.offers_for(&(10_000 + i).to_string()).unwrap().len())
        .sum();
    assert_eq!(per_account, 1000);
}

#[tokio::test]
async fn data_and_pending_claims_survive_reopening() {
    let f = start(OfferRule::default());
    assert_eq!(offer(&f, "kept", notification("10000", at(0))).await, MADE);
    let pending = f
        .writer
        .record("pending", notification("10000", at(1)))
        .await;
    assert_eq!(pending.unwrap(), Outcome::Claimed);
    let replica = f.db.replica().to_owned();
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
    assert_eq!(db.replica(), replica, "a replica is its store");
    assert_eq!(db.counts().unwrap(), counts);
    assert_eq!(db.pending_claims().unwrap(), ["pending"]);
    assert_eq!(db.ledger_next_offset().unwrap(), Some(1));
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
