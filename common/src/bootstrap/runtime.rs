//! The tokio runtime both services run on, built once here instead of by `#[tokio::main]`.

use tokio::runtime::{Builder, Runtime};

/// Threads for blocking calls (`spawn_blocking`: redb transactions that wait for an fsync,
/// opening a store). tokio's default cap is 512: a burst of outbox writes under VIP load could
/// start hundreds of threads, each with its own stack and, under glibc, possibly its own malloc
/// arena, and the process keeps that memory after they exit. The services never have more than
/// a handful of blocking calls that need to run at once (the notifier's batches are
/// sequential, the relay handles one batch at a time, the others are occasional reads), so
/// extra calls wait for a thread instead; 8 leaves room for all of them.
pub const MAX_BLOCKING_THREADS: usize = 8;

/// A multi-thread runtime with one worker per core (tokio's default), I/O and timers enabled,
/// and at most [`MAX_BLOCKING_THREADS`] blocking threads.
///
/// ```no_run
/// fn main() -> anyhow::Result<()> {
///     common::bootstrap::runtime()?.block_on(async {
///         // the service
///         Ok(())
///     })
/// }
/// ```
///
/// # Errors
///
/// When the operating system refuses the runtime's threads or its I/O driver.
pub fn runtime() -> std::io::Result<Runtime> {
    Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
}
