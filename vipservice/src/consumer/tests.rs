use std::sync::Mutex;

use common::messaging::MockMessaging;

use super::*;
use crate::ledger::{self, Entry};
use crate::offers::{DEFAULT_MAX_BATCH, OfferDb, OfferRule, Ordered};

struct Fixture {
    _dir: tempfile::TempDir,
    db: Arc<OfferDb>,
    writer: Arc<OfferWriter>,
    consumer: OfferConsumer,
    /// The ledger entries the consumer published, in order.
    announced: Arc<Mutex<Vec<Entry>>>,
}

/// A consumer whose ledger is a mock that keeps what is published on it; [`Fixture::read_ledger`]
/// plays the ledger reader's part.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Arc::new(OfferDb::open(dir.path().join("offers.redb")).expect("db opens"));
    let writer = Arc::new(
        OfferWriter::start(db.clone(), OfferRule::default(), DEFAULT_MAX_BATCH)
            .expect("writer starts"),
    );
    let announced = Arc::new(Mutex::new(Vec::new()));
    let mut messaging = MockMessaging::new();
    let kept = announced.clone();
    messaging
        .expect_publish_on_stream()
        .returning(move |stream, message| {
            assert_eq!(stream.name, "vip_queue.ledger");
            assert_eq!(message.kind, ledger::ENTRY_TYPE);
            let entry = serde_json::from_slice(&message.body).expect("an entry");
            kept.lock().expect("lock").push(entry);
            Ok(())
        });
    let announcer = Announcer::start(
        Arc::new(messaging),
        ledger::stream_for("vip_queue"),
        db.replica().to_owned(),
    );
    Fixture {
        _dir: dir,
        db,
        writer: writer.clone(),
        consumer: OfferConsumer::new(writer, Arc::new(announcer)),
        announced,
    }
}

impl Fixture {
    /// Applies every entry announced so far, as the ledger reader would.
    async fn read_ledger(&self) {
        let entries = std::mem::take(&mut *self.announced.lock().expect("lock"));
        for entry in entries {
            let offset = self.db.ledger_next_offset().expect("offset").unwrap_or(0);
            let ordered = Ordered {
                replica: entry.replica,
                message_ids: entry.message_ids,
                offset,
            };
            let applying = self.writer.apply(ordered).await.expect("queued");
            applying.await.expect("answered").expect("applied");
        }
    }
}

fn message(body: &str, message_id: Option<&str>) -> IncomingMessage {
    let mut message = IncomingMessage::from_body(body.as_bytes().to_vec());
    message.message_id = message_id.map(str::to_owned);
    message
}

const GO_BODY: &str = r#"{"accountId":"10000","readAt":"2017-02-15 20:06:27.033757223 +0000 UTC"}"#;

#[tokio::test]
async fn a_valid_notification_becomes_one_offer_and_its_redelivery_nothing_more() {
    let f = fixture();
    f.consumer
        .handle(message(GO_BODY, Some("m-1")))
        .await
        .expect("handled");
    {
        let announced = f.announced.lock().expect("lock");
        let ids: Vec<_> = announced
            .iter()
            .flat_map(|e| e.message_ids.clone())
            .collect();
        assert_eq!(ids, ["m-1"], "acked only once the claim is in the ledger");
        assert_eq!(announced[0].replica, f.db.replica());
    }
    assert!(
        f.db.offers_for("10000").expect("reads").is_empty(),
        "not ordered yet"
    );
    f.read_ledger().await;
    f.consumer
        .handle(message(GO_BODY, Some("m-1")))
        .await
        .expect("duplicate acked");
    let offers = f.db.offers_for("10000").expect("reads");
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].message_id, "m-1");
    assert_eq!(f.db.counts().expect("counts").duplicates, 1);
}

#[tokio::test]
async fn a_claim_that_cannot_be_announced_while_stopping_is_requeued() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Arc::new(OfferDb::open(dir.path().join("offers.redb")).expect("db opens"));
    let writer = Arc::new(
        OfferWriter::start(db.clone(), OfferRule::default(), DEFAULT_MAX_BATCH)
            .expect("writer starts"),
    );
    let mut messaging = MockMessaging::new();
    messaging
        .expect_publish_on_stream()
        .returning(|_, _| Err(common::messaging::MessagingError::Closed));
    let announcer = Announcer::start(
        Arc::new(messaging),
        ledger::stream_for("vip_queue"),
        db.replica().to_owned(),
    );
    let consumer = OfferConsumer::new(writer, Arc::new(announcer));
    let err = consumer
        .handle(message(GO_BODY, Some("m-1")))
        .await
        .expect_err("not announced");
    assert!(matches!(err, HandlerError::Requeue(_)), "{err}");
    assert_eq!(
        db.pending_claims().expect("reads"),
        ["m-1"],
        "kept for the next start"
    );
}

#[tokio::test]
async fn an_invalid_body_is_rejected_not_retried() {
    let f = fixture();
    for body in [
        "{not json",
        r#"{"readAt":"2017-02-15T20:06:27Z"}"#,
        r#"{"accountId":"1","readAt":"yesterday"}"#,
    ] {
        let err = f
            .consumer
            .handle(message(body, Some("bad")))
            .await
            .expect_err(body);
        assert!(matches!(err, HandlerError::Reject(_)), "{body}: {err}");
    }
    assert_eq!(f.db.counts().expect("counts").processed, 0);
}

#[tokio::test]
async fn a_message_without_id_is_recognised_when_redelivered_by_its_body() {
    let f = fixture();
    f.consumer
        .handle(message(GO_BODY, None))
        .await
        .expect("handled");
    f.read_ledger().await;
    f.consumer
        .handle(message(GO_BODY, Some("")))
        .await
        .expect("handled");
    let offers = f.db.offers_for("10000").expect("reads");
    assert_eq!(offers.len(), 1);
    assert_eq!(
        offers[0].message_id,
        format!(
            "body-{}",
            Uuid::new_v5(&Uuid::NAMESPACE_OID, GO_BODY.as_bytes())
        )
    );
}

#[test]
fn the_derived_id_does_not_change_between_builds() {
    // A changed derivation would orphan ids already stored (reference: Python uuid.uuid5).
    let message = message("{}", None);
    assert_eq!(
        message_id_of(&message),
        "body-56bd00e8-9408-567f-b0cc-aab82ef285b4"
    );
}
