use std::sync::Mutex;
use std::time::Duration;

use common::messaging::{MessagingError, MockMessaging};
use tokio::sync::mpsc;

use super::*;
use crate::ledger::{self, Entry, LedgerReader};
use crate::offers::{DEFAULT_MAX_BATCH, OfferDb, OfferRule, OfferWriter};

struct Fixture {
    _dir: tempfile::TempDir,
    db: Arc<OfferDb>,
    consumer: OfferConsumer,
    stopping: CancellationToken,
    /// The ledger entries the consumer published, in order.
    announced: Arc<Mutex<Vec<Entry>>>,
    /// The published entries' bodies, when nobody reads the ledger.
    unread: Option<mpsc::UnboundedReceiver<Vec<u8>>>,
}

/// A consumer whose ledger is a mock: what is published on it is kept and, when `read` is
/// true, handed at once to a real [`LedgerReader`] on the same store, as the stream would;
/// otherwise left on [`Fixture::unread`].
fn fixture(read: bool) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Arc::new(OfferDb::open(dir.path().join("offers.redb")).expect("db opens"));
    let writer = Arc::new(
        OfferWriter::start(db.clone(), OfferRule::default(), DEFAULT_MAX_BATCH)
            .expect("writer starts"),
    );
    let settlements = Arc::new(Settlements::default());
    let reader = LedgerReader::new(writer, settlements.clone(), db.replica().to_owned());
    let (stream, mut entries) = mpsc::unbounded_channel::<Vec<u8>>();
    let unread = if read {
        tokio::spawn(async move {
            let mut offset = 0;
            while let Some(body) = entries.recv().await {
                let mut message = IncomingMessage::from_body(body);
                message.stream_offset = Some(offset);
                offset += 1;
                reader.handle(message).await.expect("entry applied");
            }
        });
        None
    } else {
        Some(entries)
    };
    let announced = Arc::new(Mutex::new(Vec::new()));
    let mut messaging = MockMessaging::new();
    let kept = announced.clone();
    messaging
        .expect_publish_on_stream()
        .returning(move |ledger, message| {
            assert_eq!(ledger.name, "vip_queue.ledger");
            assert_eq!(message.kind, ledger::ENTRY_TYPE);
            let entry = serde_json::from_slice(&message.body).expect("an entry");
            kept.lock().expect("lock").push(entry);
            stream
                .send(message.body.to_vec())
                .expect("the ledger's reader or test is there");
            Ok(())
        });
    let announcer = Announcer::start(
        Arc::new(messaging),
        ledger::stream_for("vip_queue"),
        db.replica().to_owned(),
    );
    let stopping = CancellationToken::new();
    Fixture {
        _dir: dir,
        db,
        consumer: OfferConsumer::new(Arc::new(announcer), settlements, stopping.clone()),
        stopping,
        announced,
        unread,
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
    let f = fixture(true);
    f.consumer
        .handle(message(GO_BODY, Some("m-1")))
        .await
        .expect("handled");
    {
        let announced = f.announced.lock().expect("lock");
        assert_eq!(announced.len(), 1);
        assert_eq!(announced[0].replica, f.db.replica());
        let claim = &announced[0].claims[0];
        assert_eq!(
            (claim.message_id.as_str(), claim.account_id.as_str()),
            ("m-1", "10000")
        );
    }
    let offers = f.db.offers_for("10000").expect("reads");
    assert_eq!(offers.len(), 1, "acked only once the offer is in the store");
    assert_eq!(offers[0].message_id, "m-1");

    f.consumer
        .handle(message(GO_BODY, Some("m-1")))
        .await
        .expect("duplicate acked");
    assert_eq!(f.db.offers_for("10000").expect("reads").len(), 1);
    assert_eq!(f.db.counts().expect("counts").duplicates, 1);
}

#[tokio::test]
async fn a_claim_that_cannot_be_announced_while_stopping_is_requeued() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Arc::new(OfferDb::open(dir.path().join("offers.redb")).expect("db opens"));
    let mut messaging = MockMessaging::new();
    messaging
        .expect_publish_on_stream()
        .returning(|_, _| Err(MessagingError::Closed));
    let announcer = Announcer::start(
        Arc::new(messaging),
        ledger::stream_for("vip_queue"),
        db.replica().to_owned(),
    );
    let consumer = OfferConsumer::new(
        Arc::new(announcer),
        Arc::new(Settlements::default()),
        CancellationToken::new(),
    );
    let err = consumer
        .handle(message(GO_BODY, Some("m-1")))
        .await
        .expect_err("not announced");
    assert!(matches!(err, HandlerError::Requeue(_)), "{err}");
}

#[tokio::test]
async fn a_claim_the_ledger_has_not_ordered_when_stopping_is_requeued() {
    let f = fixture(false);
    let mut unread = f.unread.expect("nobody reads the ledger");
    let handling =
        tokio::spawn(async move { f.consumer.handle(message(GO_BODY, Some("m-1"))).await });
    // Announced, but nobody reads the ledger: the handler waits (the message stays unacked).
    let announced = tokio::time::timeout(Duration::from_secs(5), unread.recv()).await;
    assert!(matches!(announced, Ok(Some(_))), "the claim was announced");
    assert!(!handling.is_finished());
    f.stopping.cancel();
    let err = handling.await.expect("joins").expect_err("requeued");
    assert!(matches!(err, HandlerError::Requeue(_)), "{err}");
    assert!(f.db.offers_for("10000").expect("reads").is_empty());
}

#[tokio::test]
async fn an_invalid_body_is_rejected_not_retried() {
    let f = fixture(true);
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
    let f = fixture(true);
    f.consumer
        .handle(message(GO_BODY, None))
        .await
        .expect("handled");
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
