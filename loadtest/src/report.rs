//! The figures of one run: a human table and one JSON line.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::compare::{RawLimits, Row};
use crate::faults::FaultReport;
use crate::outage::OutageReport;

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Quantiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Quantiles {
    #[allow(clippy::cast_precision_loss)]
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// The longest stretch of the load without a VIP read answered 200.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct GapReport {
    pub seconds: f64,
    /// When it began, ms since the Unix epoch.
    pub from_unix_ms: u64,
}

/// The stretch without a VIP read answered 200 that the system aims to stay within, whatever
/// fails: reported, not asserted.
pub const GAP_GOAL_SECONDS: f64 = 5.0;

/// One phase of the load as it ran.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PhaseReport {
    pub seconds: f64,
    pub vip_fraction: f64,
    pub req_per_s: f64,
    /// Confirmed publishes during the phase ÷ its length (`None` if accountservice's counter
    /// could not be read at one of its ends).
    pub publish_per_s: Option<f64>,
    /// Offers committed (`offeredAt`) during the phase ÷ its length.
    pub offers_per_s: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seconds: f64,
    pub concurrency: usize,
    pub requests_ok: u64,
    pub http_errors: u64,
    pub transport_errors: u64,
    pub req_per_s: f64,
    pub phases: Vec<PhaseReport>,
    pub latency: Quantiles,
    pub vip_reads_ok: u64,
    pub vip_reads_failed: u64,
    /// VIP reads answered 503 (their notification could not be made durable).
    pub vip_reads_503: u64,
    pub other_reads_failed: u64,
    /// The longest stretch without a VIP read answered 200 (goal: [`GAP_GOAL_SECONDS`]).
    pub longest_without_vip_200: GapReport,
    pub published_since_start: f64,
    pub publish_failed_since_start: f64,
    pub buffered_since_start: f64,
    pub outbox: f64,
    /// From the outbox commit to the broker's confirm, p99 of accountservice's histogram
    /// (interpolated within its bucket; since its last start).
    pub commit_to_confirm_p99_ms: Option<f64>,
    pub consumed_since_start: f64,
    pub offers_made_since_start: f64,
    pub duplicates_dropped_since_start: f64,
    pub dead_lettered_since_start: f64,
    pub dlq_depth: u64,
    pub poison_injected: u64,
    pub offers_in_database: u64,
    pub distinct_offers: u64,
    pub duplicate_offers: u64,
    pub duplicate_examples: Vec<String>,
    pub drained: bool,
    pub drain_seconds: f64,
    /// accepted VIP reads − (distinct offers + outbox + dead-lettered notifications), if more
    pub lost: i64,
    /// The other way round: notifications of reads that got no answer (killed mid-request);
    /// at most `vip_in_doubt`.
    pub unanswered_delivered: i64,
    /// VIP reads that reached the service and got no answer.
    pub vip_in_doubt: u64,
    pub end_to_end: Quantiles,
    /// Confirmed publishes ÷ the time from the load's start until the publish counter stopped.
    pub publish_per_s: f64,
    /// Distinct offers ÷ the time from the load's start to the last `offeredAt`.
    pub offers_per_s: f64,
    pub vip_replicas: usize,
    pub peak_rss_kb: BTreeMap<String, u64>,
    /// The outage (broker or database) and what it cost, in the fault scenarios that record one.
    pub outage: Option<OutageReport>,
    /// The faults a cluster scenario inflicted, in order, and what each cost.
    pub faults: Vec<FaultReport>,
    /// Why the fault schedule did not finish, when it did not.
    pub fault_schedule_error: Option<String>,
    pub against_go: Vec<Row>,
    pub raw_limits: Option<RawLimits>,
    pub against_raw: Vec<Row>,
}

impl Report {
    pub fn print_table(&self) {
        let rows: Vec<(&str, String)> = vec![
            ("scenario", self.scenario.clone()),
            (
                "load",
                format!("{:.0} s, {} connections", self.seconds, self.concurrency),
            ),
            ("requests 200", self.requests_ok.to_string()),
            (
                "errors (HTTP / transport)",
                format!("{} / {}", self.http_errors, self.transport_errors),
            ),
            ("req/s", format!("{:.0}", self.req_per_s)),
            (
                "by phase: VIP share, req/s, publishes/s, offers/s",
                self.phases
                    .iter()
                    .map(|p| {
                        format!(
                            "{:.0}% {:.0} {} {:.0}",
                            p.vip_fraction * 100.0,
                            p.req_per_s,
                            p.publish_per_s
                                .map_or("?".to_owned(), |r| format!("{r:.0}")),
                            p.offers_per_s
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            (
                "latency p50 / p99 / max",
                format!(
                    "{:.2} / {:.2} / {:.2} ms",
                    self.latency.p50_ms, self.latency.p99_ms, self.latency.max_ms
                ),
            ),
            (
                "VIP reads 200 / failed (of them 503)",
                format!(
                    "{} / {} ({})",
                    self.vip_reads_ok, self.vip_reads_failed, self.vip_reads_503
                ),
            ),
            ("other reads failed", self.other_reads_failed.to_string()),
            (
                "longest without a VIP read 200",
                format!(
                    "{:.2} s (goal ≤ {GAP_GOAL_SECONDS} s)",
                    self.longest_without_vip_200.seconds
                ),
            ),
            (
                "published / failed / buffered (since start)",
                format!(
                    "{} / {} / {}",
                    self.published_since_start,
                    self.publish_failed_since_start,
                    self.buffered_since_start
                ),
            ),
            ("outbox now", self.outbox.to_string()),
            (
                "commit → broker confirm p99 (histogram)",
                self.commit_to_confirm_p99_ms
                    .map_or("–".to_owned(), |ms| format!("{ms:.2} ms")),
            ),
            (
                "consumed / offers / dups dropped / DLQ'd (since start)",
                format!(
                    "{} / {} / {} / {}",
                    self.consumed_since_start,
                    self.offers_made_since_start,
                    self.duplicates_dropped_since_start,
                    self.dead_lettered_since_start
                ),
            ),
            (
                "DLQ depth / poison injected",
                format!("{} / {}", self.dlq_depth, self.poison_injected),
            ),
            (
                "offers in the database / distinct",
                format!("{} / {}", self.offers_in_database, self.distinct_offers),
            ),
            (
                "duplicate offers",
                format!(
                    "{} {}",
                    self.duplicate_offers,
                    self.duplicate_examples.join(" ")
                ),
            ),
            (
                "drained",
                format!("{} after {:.1} s", self.drained, self.drain_seconds),
            ),
            ("LOST", self.lost.to_string()),
            (
                "delivered without a 200 / reads with no answer",
                format!("{} / {}", self.unanswered_delivered, self.vip_in_doubt),
            ),
            (
                "read → offer p50 / p99 / max",
                format!(
                    "{:.1} / {:.1} / {:.1} ms",
                    self.end_to_end.p50_ms, self.end_to_end.p99_ms, self.end_to_end.max_ms
                ),
            ),
        ];
        let mut rows = rows;
        rows.push((
            "whole run: confirmed publishes/s / offers/s",
            format!("{:.0} / {:.0}", self.publish_per_s, self.offers_per_s),
        ));
        if let Some(o) = self.outage {
            rows.push((
                "outage / HTTP errors in it",
                format!("{:.1} s / {}", o.seconds, o.http_errors_during),
            ));
            rows.push((
                "outage over → first offer",
                o.seconds_back_to_first_offer
                    .map_or("no offer after it".to_owned(), |s| format!("{s:.2} s")),
            ));
        }
        for fault in &self.faults {
            rows.push(("fault", fault.describe()));
        }
        if let Some(error) = &self.fault_schedule_error {
            rows.push(("FAULT SCHEDULE FAILED", error.clone()));
        }
        for (name, kb) in &self.peak_rss_kb {
            rows.push(("peak RSS", format!("{name}: {:.1} MB", kb_to_mb(*kb))));
        }
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (k, v) in rows {
            println!("{k:<width$}  {v}");
        }
    }

    pub fn json_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

#[allow(clippy::cast_precision_loss)]
fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
