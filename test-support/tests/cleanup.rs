//! The cleanup guard against the real broker: what a test recorded is gone after it passed and
//! after it panicked, and dropping the guard never hangs when the broker does not answer.

use std::time::{Duration, Instant};

use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use test_support::{Broker, Cleanup, amqp_url, unique};

/// Declares `queues` and `exchanges` as a service would (`test-support`'s API has no declare:
/// tests declare through the code they test).
async fn declare(queues: &[&str], exchanges: &[&str]) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .expect("the test broker answers");
    let channel = connection.create_channel().await.expect("channel");
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    for queue in queues {
        channel
            .queue_declare((*queue).into(), durable, FieldTable::default())
            .await
            .expect("queue declared");
    }
    for exchange in exchanges {
        let options = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                (*exchange).into(),
                ExchangeKind::Topic,
                options,
                FieldTable::default(),
            )
            .await
            .expect("exchange declared");
    }
    connection
        .close(200, "declared".into())
        .await
        .expect("closed");
}

async fn assert_gone(broker: &Broker, queues: &[&str], exchanges: &[&str]) {
    for queue in queues {
        assert!(!broker.exists(queue).await, "queue {queue} is left");
    }
    for exchange in exchanges {
        assert!(
            !broker.exchange_exists(exchange).await,
            "exchange {exchange} is left"
        );
    }
}

#[tokio::test]
async fn what_a_test_recorded_is_deleted_when_its_guard_drops() {
    let broker = Broker::connect().await;
    let cleanup = Cleanup::new();
    let queue = cleanup.work_queue(unique("cleanup-pass"));
    let (dlq, dlx) = (format!("{queue}.dlq"), format!("{queue}.dlx"));
    let exchange = cleanup.exchange(unique("cleanup-pass-bus"));
    // Recorded but never declared: deleting what is absent is fine.
    cleanup.queue(unique("cleanup-never-declared"));
    declare(&[&queue, &dlq], &[&dlx, &exchange]).await;
    assert!(broker.exists(&queue).await && broker.exchange_exists(&dlx).await);

    drop(cleanup);
    assert_gone(&broker, &[&queue, &dlq], &[&dlx, &exchange]).await;
}

#[test]
fn what_a_failing_test_recorded_is_deleted_as_it_unwinds() {
    let queue = unique("cleanup-fail");
    let exchange = unique("cleanup-fail-bus");
    let (q, e) = (queue.clone(), exchange.clone());
    // A failing #[tokio::test]: the panic unwinds out of `block_on`, dropping the guard inside
    // the test's runtime.
    let failed = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let cleanup = Cleanup::new();
            cleanup.queue(&q);
            cleanup.exchange(&e);
            declare(&[&q], &[&e]).await;
            panic!("this test fails on purpose");
        })
    })
    .join();
    assert!(failed.is_err(), "the test body panicked");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let broker = Broker::connect().await;
        assert_gone(&broker, &[&queue], &[&exchange]).await;
    });
}

#[tokio::test]
async fn dropping_a_guard_gives_up_in_time_when_the_broker_does_not_answer() {
    // Accepts connections and never says a word, like a broker behind a dead link.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "amqp://guest:guest@{}/%2f",
        silent.local_addr().expect("address")
    );
    let cleanup = Cleanup::with_url(url).with_limit(Duration::from_millis(300));
    cleanup.queue(unique("cleanup-unreachable"));

    let started = Instant::now();
    drop(cleanup);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "dropping took {took:?}"
    );
    drop(silent);
}
