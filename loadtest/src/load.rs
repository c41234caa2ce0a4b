//! Driving accountservice: workers issuing reads for a sequence of phases, a progress line a
//! second, and the counts and latencies they leave.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::time::MissedTickBehavior;

use crate::error::Error;
use crate::ids::IdRange;

/// A stretch of the load with one VIP share: `SECONDS:VIP_FRACTION`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    pub seconds: f64,
    pub vip_fraction: f64,
}

impl FromStr for Phase {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| Error::BadArgument {
            arg: "--phase",
            reason: format!("{s:?}: {reason}"),
        };
        let (seconds, fraction) = s
            .split_once(':')
            .ok_or_else(|| bad("not SECONDS:FRACTION"))?;
        let seconds: f64 = seconds.parse().map_err(|_| bad("seconds not a number"))?;
        let vip_fraction: f64 = fraction.parse().map_err(|_| bad("fraction not a number"))?;
        if !(seconds > 0.0 && (0.0..=1.0).contains(&vip_fraction)) {
            return Err(bad("seconds must be > 0 and the fraction within 0..=1"));
        }
        Ok(Self {
            seconds,
            vip_fraction,
        })
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub base_url: String,
    pub phases: Vec<Phase>,
    pub concurrency: usize,
    /// Requests per second over all workers; `None`: as fast as answers come.
    pub rate: Option<f64>,
    pub vip_ids: IdRange,
    pub other_ids: IdRange,
}

impl Plan {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.phases.iter().map(|p| p.seconds).sum())
    }

    /// When each phase ends, from the start of the load.
    pub fn phase_ends(&self) -> Vec<Duration> {
        let mut end = 0.0;
        self.phases
            .iter()
            .map(|p| {
                end += p.seconds;
                Duration::from_secs_f64(end)
            })
            .collect()
    }

    /// The phase under way at `elapsed` (its index and VIP share), `None` once every phase is
    /// over; while `extended`, the last phase goes on past its end.
    fn phase_at(&self, elapsed: Duration, extended: bool) -> Option<(usize, f64)> {
        let mut end = 0.0;
        for (i, phase) in self.phases.iter().enumerate() {
            end += phase.seconds;
            if elapsed.as_secs_f64() < end {
                return Some((i, phase.vip_fraction));
            }
        }
        let last = self.phases.len().checked_sub(1)?;
        extended.then(|| (last, self.phases[last].vip_fraction))
    }
}

/// Keeps the last phase of the load going past its planned end until released: a fault
/// schedule that outlasts the planned load (a node takes seconds to boot) still runs under
/// load.
#[derive(Debug, Clone, Default)]
pub struct Extension(Arc<AtomicBool>);

impl Extension {
    /// An extension in force until [`release`](Self::release)d.
    pub fn held() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    pub fn release(&self) {
        self.0.store(false, Relaxed);
    }

    fn in_force(&self) -> bool {
        self.0.load(Relaxed)
    }
}

/// The longest stretch without a VIP read answered 200, measured between the answers (from
/// the start of the load to the first, between consecutive ones, from the last to the end).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gap {
    /// When it began, from the start of the load.
    pub from: Duration,
    pub length: Duration,
}

/// Follows the VIP reads answered 200 for [`Gap`].
#[derive(Debug, Default)]
struct GapTracker {
    last: Duration,
    longest: Gap,
}

impl GapTracker {
    fn answered(&mut self, at: Duration) {
        // Answers reach the tracker in about the order they came; one a little late only
        // shortens nothing.
        if at > self.last {
            let length = at - self.last;
            if length > self.longest.length {
                self.longest = Gap {
                    from: self.last,
                    length,
                };
            }
            self.last = at;
        }
    }

    /// The longest gap, counting the one from the last answer to `end` (the end of the load).
    fn longest_until(&self, end: Duration) -> Gap {
        let tail = end.saturating_sub(self.last);
        if tail > self.longest.length {
            Gap {
                from: self.last,
                length: tail,
            }
        } else {
            self.longest
        }
    }
}

/// Counters shared by the workers, read by the progress line.
#[derive(Debug, Default)]
pub struct Counters {
    pub sequence: AtomicU64,
    pub ok: AtomicU64,
    pub http_errors: AtomicU64,
    pub transport_errors: AtomicU64,
    pub vip_ok: AtomicU64,
    pub vip_failed: AtomicU64,
    /// VIP reads answered 503: refused because the notification could not be made durable.
    pub vip_unavailable: AtomicU64,
    /// Non-VIP reads that failed, for any reason.
    pub other_failed: AtomicU64,
    /// VIP reads that reached the service but got no answer (it was killed mid-request): each
    /// may or may not have been accepted, so its notification may or may not exist.
    pub vip_in_doubt: AtomicU64,
    /// Requests answered 200, per phase of the plan.
    pub ok_by_phase: Vec<AtomicU64>,
    /// When VIP reads were answered 200, for the longest stretch without one.
    vip_answers: Mutex<GapTracker>,
    /// When each failed request (HTTP or transport error) ended, in ms since the Unix epoch:
    /// a fault scenario counts those that fell within its outage. Errors are rare (a restart
    /// refuses a few thousand requests), so a list is small.
    pub error_times_ms: Mutex<Vec<u64>>,
}

impl Counters {
    pub fn for_plan(plan: &Plan) -> Self {
        Self {
            ok_by_phase: plan.phases.iter().map(|_| AtomicU64::new(0)).collect(),
            ..Self::default()
        }
    }

    fn record_error(&self) {
        let now = unix_ms(SystemTime::now());
        if let Ok(mut times) = self.error_times_ms.lock() {
            times.push(now);
        }
    }

    fn record_failed(&self, vip: bool) {
        let failed = if vip {
            &self.vip_failed
        } else {
            &self.other_failed
        };
        failed.fetch_add(1, Relaxed);
    }

    fn record_vip_ok(&self, at: Duration) {
        if let Ok(mut tracker) = self.vip_answers.lock() {
            tracker.answered(at);
        }
    }

    /// The longest stretch without a VIP read answered 200 in a load that lasted `elapsed`.
    pub fn longest_without_vip_ok(&self, elapsed: Duration) -> Gap {
        self.vip_answers
            .lock()
            .map(|tracker| tracker.longest_until(elapsed))
            .unwrap_or_default()
    }

    /// Failed requests that ended within `from_ms..=to_ms`.
    pub fn errors_between(&self, from_ms: u64, to_ms: u64) -> u64 {
        self.error_times_ms.lock().map_or(0, |times| {
            times
                .iter()
                .filter(|&&t| (from_ms..=to_ms).contains(&t))
                .count() as u64
        })
    }
}

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whether request number `i` is a VIP read at share `f`: exactly `f` of any long run.
fn is_vip(i: u64, f: f64) -> bool {
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let step = |n: u64| (n as f64 * f).floor() as u64;
    step(i + 1) > step(i)
}

/// Runs the plan, its last phase for as long as `extension` is in force; returns the merged
/// latency histogram (µs) of the 200 answers.
pub async fn run(
    plan: Arc<Plan>,
    counters: Arc<Counters>,
    extension: Extension,
) -> Result<Histogram<u64>, Error> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|source| Error::Http {
            url: plan.base_url.clone(),
            source,
        })?;
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..plan.concurrency {
        workers.spawn(worker(
            Arc::clone(&plan),
            Arc::clone(&counters),
            client.clone(),
            started,
            extension.clone(),
        ));
    }
    let mut merged = new_histogram()?;
    while let Some(joined) = workers.join_next().await {
        // A worker only ends by returning its histogram; a panic is a bug worth surfacing.
        let histogram = joined.map_err(|e| Error::BadArgument {
            arg: "worker",
            reason: e.to_string(),
        })??;
        merged.add(&histogram).map_err(|e| Error::BadArgument {
            arg: "histogram",
            reason: e.to_string(),
        })?;
    }
    Ok(merged)
}

pub fn new_histogram() -> Result<Histogram<u64>, Error> {
    // 1 µs to 10 min, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

async fn worker(
    plan: Arc<Plan>,
    counters: Arc<Counters>,
    client: reqwest::Client,
    started: Instant,
    extension: Extension,
) -> Result<Histogram<u64>, Error> {
    let mut histogram = new_histogram()?;
    let mut pacer = plan.rate.map(|rate| {
        #[allow(clippy::cast_precision_loss)]
        let period = Duration::from_secs_f64(plan.concurrency as f64 / rate);
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        interval
    });
    loop {
        if let Some(pacer) = pacer.as_mut() {
            pacer.tick().await;
        }
        let Some((phase, fraction)) = plan.phase_at(started.elapsed(), extension.in_force()) else {
            return Ok(histogram);
        };
        let i = counters.sequence.fetch_add(1, Relaxed);
        let vip = is_vip(i, fraction);
        let id = if vip {
            plan.vip_ids.nth(i)
        } else {
            plan.other_ids.nth(i)
        };
        let url = format!("{}/accounts/{id}", plan.base_url);
        let sent = Instant::now();
        let answer = match client.get(&url).send().await {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.map(|_| status)
            }
            Err(e) => Err(e),
        };
        match answer {
            Ok(status) if status.as_u16() == 200 => {
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                histogram.saturating_record(micros.max(1));
                counters.ok.fetch_add(1, Relaxed);
                if let Some(n) = counters.ok_by_phase.get(phase) {
                    n.fetch_add(1, Relaxed);
                }
                if vip {
                    counters.vip_ok.fetch_add(1, Relaxed);
                    counters.record_vip_ok(started.elapsed());
                }
            }
            Ok(status) => {
                counters.record_error();
                counters.http_errors.fetch_add(1, Relaxed);
                counters.record_failed(vip);
                if vip && status.as_u16() == 503 {
                    counters.vip_unavailable.fetch_add(1, Relaxed);
                }
            }
            Err(error) => {
                counters.record_error();
                counters.transport_errors.fetch_add(1, Relaxed);
                counters.record_failed(vip);
                if vip && !error.is_connect() {
                    counters.vip_in_doubt.fetch_add(1, Relaxed);
                }
                // The service may be restarting: do not spin on refused connections.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vip_share_is_exact_over_a_run() {
        assert_eq!((0..1000).filter(|&i| is_vip(i, 0.1)).count(), 100);
        assert_eq!((0..1000).filter(|&i| is_vip(i, 1.0)).count(), 1000);
        assert_eq!((0..1000).filter(|&i| is_vip(i, 0.0)).count(), 0);
    }

    #[test]
    fn phases_parse_and_follow_each_other() {
        let plan = Plan {
            base_url: String::new(),
            phases: vec!["2:0.1".parse().unwrap(), "3:1".parse().unwrap()],
            concurrency: 1,
            rate: None,
            vip_ids: "1-2".parse().unwrap(),
            other_ids: "3-4".parse().unwrap(),
        };
        assert_eq!(plan.duration(), Duration::from_secs(5));
        assert_eq!(
            plan.phase_ends(),
            [Duration::from_secs(2), Duration::from_secs(5)]
        );
        assert_eq!(plan.phase_at(Duration::from_secs(1), false), Some((0, 0.1)));
        assert_eq!(plan.phase_at(Duration::from_secs(4), false), Some((1, 1.0)));
        assert_eq!(plan.phase_at(Duration::from_secs(5), false), None);
        assert_eq!(plan.phase_at(Duration::from_secs(9), true), Some((1, 1.0)));
        assert!("5".parse::<Phase>().is_err());
        assert!("5:2".parse::<Phase>().is_err());
    }

    #[test]
    fn the_longest_gap_counts_the_start_and_the_end_of_the_load() {
        let s = Duration::from_secs;
        let mut tracker = GapTracker::default();
        for at in [1, 2, 6, 7] {
            tracker.answered(s(at));
        }
        // An answer that reaches the tracker late changes nothing.
        tracker.answered(s(3));
        assert_eq!(
            tracker.longest_until(s(8)),
            Gap {
                from: s(2),
                length: s(4)
            }
        );
        assert_eq!(
            tracker.longest_until(s(20)),
            Gap {
                from: s(7),
                length: s(13)
            }
        );
        assert_eq!(
            GapTracker::default().longest_until(s(5)),
            Gap {
                from: s(0),
                length: s(5)
            }
        );
    }
}
