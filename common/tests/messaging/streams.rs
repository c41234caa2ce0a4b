//! Streams: every reader sees the whole log in one order, from an offset of its choosing, and
//! resumes after a lost connection where it left off.

use common::messaging::{Messaging, StreamOffset, StreamSpec};
use serde_json::{Value, json};

use crate::helpers::*;

/// The `i` of each message's body.
fn numbers(messages: &[common::messaging::IncomingMessage]) -> Vec<u64> {
    messages
        .iter()
        .map(|m| {
            let body: Value = serde_json::from_slice(&m.body).expect("JSON body");
            body["i"].as_u64().expect("a number")
        })
        .collect()
}

async fn append(client: &impl Messaging, stream: &StreamSpec, numbers: std::ops::Range<u64>) {
    for i in numbers {
        client
            .publish_on_stream(stream, message(&json!({ "i": i })))
            .await
            .expect("appended");
    }
}

#[tokio::test]
async fn every_reader_sees_the_whole_stream_in_order_from_its_offset() {
    let cleanup = Cleanup::new();
    let client = client(&amqp_url()).await;
    let stream = StreamSpec::new(cleanup.queue(unique("stream")));
    append(&client, &stream, 0..10).await;

    let (first, mut first_rx) = recorder();
    let (second, mut second_rx) = recorder();
    client
        .subscribe_to_stream(&stream, StreamOffset::First, "a", first)
        .await
        .expect("subscribes");
    client
        .subscribe_to_stream(&stream, StreamOffset::First, "b", second)
        .await
        .expect("subscribes");
    let read = receive(&mut first_rx, 10).await;
    assert_eq!(numbers(&read), (0..10).collect::<Vec<_>>());
    assert_eq!(numbers(&receive(&mut second_rx, 10).await), numbers(&read));
    let offsets: Vec<u64> = read
        .iter()
        .map(|m| m.stream_offset.expect("offset"))
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");

    let (late, mut late_rx) = recorder();
    client
        .subscribe_to_stream(&stream, StreamOffset::At(offsets[7]), "c", late)
        .await
        .expect("subscribes");
    assert_eq!(numbers(&receive(&mut late_rx, 3).await), vec![7, 8, 9]);

    client.close().await.expect("closes");
}

#[tokio::test]
async fn a_reader_resumes_after_a_cut_where_it_left_off() {
    let cleanup = Cleanup::new();
    let proxy = TcpProxy::start("127.0.0.1:5672".parse().expect("addr")).await;
    let writer = client(&amqp_url()).await;
    let reader = client(&proxy.amqp_url()).await;
    let stream = StreamSpec::new(cleanup.queue(unique("stream-cut")));
    append(&writer, &stream, 0..5).await;
    let (handler, mut rx) = recorder();
    reader
        .subscribe_to_stream(&stream, StreamOffset::First, "reader", handler)
        .await
        .expect("subscribes");
    assert_eq!(numbers(&receive(&mut rx, 5).await), vec![0, 1, 2, 3, 4]);

    cut(&proxy, &reader).await;
    append(&writer, &stream, 5..10).await;
    proxy.refuse(false);

    // In order and without a replay of what was read before the cut.
    assert_eq!(numbers(&receive(&mut rx, 5).await), vec![5, 6, 7, 8, 9]);

    for client in [writer, reader] {
        client.close().await.expect("closes");
    }
}
