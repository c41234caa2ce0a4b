//! A circuit breaker: after `threshold` consecutive failures it refuses calls for a cool-down,
//! then lets one trial call through; the trial's outcome closes it or opens it again.
//!
//! Lock-free (two atomics), so checking it costs nothing on the request path. Every method
//! takes the current instant, which keeps the state machine testable without a clock.
//! Hand-written: the established crate, `failsafe`, brings backoff strategies, failure
//! policies and future wrappers for what takes sixty lines here.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `open_until` value meaning "closed".
const CLOSED: u64 = 0;

/// A consecutive-failure circuit breaker.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cool_down: Duration,
    /// The instant the other instants are counted from, in nanoseconds.
    epoch: Instant,
    consecutive_failures: AtomicU32,
    /// While open: until when, in nanoseconds since `epoch`; [`CLOSED`] otherwise.
    open_until: AtomicU64,
}

impl CircuitBreaker {
    /// A closed breaker that opens after `threshold` consecutive failures (at least 1) and stays
    /// open for `cool_down`.
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            epoch: Instant::now(),
            consecutive_failures: AtomicU32::new(0),
            open_until: AtomicU64::new(CLOSED),
        }
    }

    /// Whether a call may be made now. Once a cool-down is over exactly one caller is let
    /// through as a trial; the others are refused for another cool-down unless it succeeds.
    pub fn try_acquire(&self, now: Instant) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == CLOSED {
            return true;
        }
        if self.nanos(now) < until {
            return false;
        }
        self.open_until
            .compare_exchange(
                until,
                self.reopen_at(now),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Records a successful call: the breaker closes.
    pub fn on_success(&self) {
        self.consecutive_failures.store(0, Ordering::Release);
        self.open_until.store(CLOSED, Ordering::Release);
    }

    /// Records a failed call: the breaker opens if it was the `threshold`th in a row.
    pub fn on_failure(&self, now: Instant) {
        let failures = self
            .consecutive_failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if failures >= self.threshold {
            self.open_until
                .store(self.reopen_at(now), Ordering::Release);
        }
    }

    /// Whether calls are being refused (or a trial is under way) at `now`.
    pub fn is_open(&self, now: Instant) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        until != CLOSED && self.nanos(now) < until
    }

    fn nanos(&self, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    /// The end of a cool-down starting at `now`; never [`CLOSED`].
    fn reopen_at(&self, now: Instant) -> u64 {
        let cool_down = u64::try_from(self.cool_down.as_nanos()).unwrap_or(u64::MAX);
        self.nanos(now).saturating_add(cool_down).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(10);

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let breaker = CircuitBreaker::new(3, COOL_DOWN);
        let t0 = Instant::now();
        breaker.on_failure(t0);
        breaker.on_failure(t0);
        assert!(breaker.try_acquire(t0));
        breaker.on_failure(t0);
        assert!(breaker.is_open(t0));
        assert!(!breaker.try_acquire(t0));
        assert!(!breaker.try_acquire(t0 + COOL_DOWN - Duration::from_nanos(1)));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let breaker = CircuitBreaker::new(2, COOL_DOWN);
        let t0 = Instant::now();
        breaker.on_failure(t0);
        breaker.on_success();
        breaker.on_failure(t0);
        assert!(breaker.try_acquire(t0));
    }

    #[test]
    fn after_the_cool_down_one_trial_goes_through() {
        let breaker = CircuitBreaker::new(1, COOL_DOWN);
        let t0 = Instant::now();
        breaker.on_failure(t0);
        let later = t0 + COOL_DOWN;
        assert!(breaker.try_acquire(later), "the trial");
        assert!(!breaker.try_acquire(later), "only one trial at a time");

        breaker.on_success();
        assert!(!breaker.is_open(later));
        assert!(breaker.try_acquire(later));
        assert!(breaker.try_acquire(later));
    }

    #[test]
    fn a_failed_trial_opens_it_for_another_cool_down() {
        let breaker = CircuitBreaker::new(1, COOL_DOWN);
        let t0 = Instant::now();
        breaker.on_failure(t0);
        let later = t0 + COOL_DOWN;
        assert!(breaker.try_acquire(later));
        breaker.on_failure(later);
        assert!(!breaker.try_acquire(later + COOL_DOWN / 2));
        assert!(breaker.try_acquire(later + COOL_DOWN));
    }
}
