//! The handler on a real SQLite database.

use test_support::TestDatabase;

use super::*;
use crate::offers::{DEFAULT_MAX_BATCH, OfferDb, OfferRule};
use crate::settings::OffersDatabaseSettings;

struct Fixture {
    _database: TestDatabase,
    db: Arc<OfferDb>,
    consumer: OfferConsumer,
}

async fn fixture() -> Fixture {
    let database = TestDatabase::sqlite();
    let settings = OffersDatabaseSettings::at(database.url());
    let db = Arc::new(OfferDb::connect(&settings).await.expect("db opens"));
    let writer = OfferWriter::start(db.clone(), OfferRule::default(), DEFAULT_MAX_BATCH);
    Fixture {
        _database: database,
        db,
        consumer: OfferConsumer::new(Arc::new(writer)),
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
    let f = fixture().await;
    f.consumer
        .handle(message(GO_BODY, Some("m-1")))
        .await
        .expect("handled");
    let mut redelivered = message(GO_BODY, Some("m-1"));
    redelivered.redelivered = true;
    f.consumer
        .handle(redelivered)
        .await
        .expect("acked, not retried");
    let offers = f.db.offers_for("10000", 100).await.expect("reads");
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].message_id, "m-1");
}

#[tokio::test]
async fn an_invalid_body_is_rejected_not_retried() {
    let f = fixture().await;
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
    assert!(f.db.offers_for("1", 100).await.expect("reads").is_empty());
}

#[tokio::test]
async fn a_message_without_id_is_recognised_when_redelivered_by_its_body() {
    let f = fixture().await;
    f.consumer
        .handle(message(GO_BODY, None))
        .await
        .expect("handled");
    f.consumer
        .handle(message(GO_BODY, Some("")))
        .await
        .expect("handled");
    let offers = f.db.offers_for("10000", 100).await.expect("reads");
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
