//! What a stand-in's consumer took from the broker, shared with the test that waits for it.

use std::time::Duration;

use futures_lite::StreamExt;
use lapin::Consumer;
use lapin::message::Delivery;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Everything delivered so far, and whether the consumer has ended.
struct State<T> {
    items: Vec<T>,
    ended: bool,
}

/// A consumer running as a task of its own (Go's `consumeLoop` goroutine), turning each delivery
/// into a `T`. Dropping it stops the task, which drops the consumer and its channel.
pub(super) struct Inbox<T> {
    state: watch::Receiver<State<T>>,
    task: JoinHandle<()>,
}

impl<T: Clone + Send + Sync + 'static> Inbox<T> {
    /// Runs `consumer` until the broker cancels it (its queue was deleted) or its channel or
    /// connection closes: like Go, it then ends without a word, and nothing consumes again.
    pub(super) fn spawn(
        mut consumer: Consumer,
        mut convert: impl FnMut(&Delivery) -> T + Send + 'static,
    ) -> Self {
        let (sender, state) = watch::channel(State {
            items: Vec::new(),
            ended: false,
        });
        let task = tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let item = convert(&delivery);
                sender.send_modify(|state| state.items.push(item));
            }
            sender.send_modify(|state| state.ended = true);
        });
        Self { state, task }
    }

    /// Everything delivered so far, in order.
    pub(super) fn items(&self) -> Vec<T> {
        self.state.borrow().items.clone()
    }

    /// Whether the consumer still runs.
    pub(super) fn consuming(&self) -> bool {
        !self.state.borrow().ended
    }

    /// Waits until `done` holds for what was delivered, the consumer ended, or `limit` passed;
    /// returns everything delivered by then (the caller checks it).
    pub(super) async fn wait_until(
        &self,
        limit: Duration,
        mut done: impl FnMut(&[T]) -> bool,
    ) -> Vec<T> {
        let mut state = self.state.clone();
        // An error means the task is gone: what it delivered is all there will be.
        let _ = timeout(
            limit,
            state.wait_for(|state| state.ended || done(&state.items)),
        )
        .await;
        self.items()
    }
}

impl<T> Drop for Inbox<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
