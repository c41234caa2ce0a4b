//! goblog-rs side by side with the Go original it replaces and with the raw broker.

use serde::Serialize;

use crate::report::{PhaseReport, Report};

/// The Go original's figures: callistaenterprise/goblog branch P9 (commit f9825e0a), unmodified,
/// built with go1.19.8, on this project's 2-core machine kind with RabbitMQ 3.10.8 (how each
/// was measured: BENCHMARKS.md, "The Go original"). The one place they are written in code.
mod go {
    /// `wrk -t2 -c50 -d15s` on a non-VIP account, median of 3.
    pub const HTTP_REQ_PER_S: f64 = 8_423.0;
    /// The highest paced VIP read rate it survives, every read consumed (unpaced, or at
    /// ~2.7k req/s, it crashes after 1–1.8 s).
    pub const VIP_REQ_PER_S: f64 = 1_693.0;
    /// VIP reads answered 200 that never produced a consumed message, before its crash.
    pub const LOST: &str = "~45% (before crashing)";
    /// Peak RSS, VIP load at 1.7k req/s.
    pub const PEAK_RSS_ACCOUNT_MB: f64 = 23.8;
    pub const PEAK_RSS_VIP_MB: f64 = 13.3;
    /// `rabbitmqctl stop_app`, 5 s, `start_app`.
    pub const BROKER_RESTART: &str = "never (does not reconnect)";
}

/// Raw broker limits measured by the workspace's `raw-lapin` in the same invocation.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RawLimits {
    /// Pipelined publish with confirms into a quorum queue, msg/s.
    pub publish_confirm_quorum: f64,
    /// Consume with a manual ack per message, msg/s (raw-lapin consumes a durable classic
    /// queue: it has no quorum consume figure).
    pub consume_ack: f64,
}

/// A reference figure: a number, or what the reference did instead of one.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum Reference {
    Number(f64),
    Text(&'static str),
}

/// One line of a comparison: `ratio` = goblog-rs ÷ reference, when both are numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub metric: String,
    pub reference: Reference,
    pub goblog_rs: f64,
    pub ratio: Option<f64>,
}

impl Row {
    fn new(metric: impl Into<String>, reference: Reference, goblog_rs: f64) -> Self {
        let ratio = match reference {
            Reference::Number(r) if r > 0.0 => Some(goblog_rs / r),
            _ => None,
        };
        Self {
            metric: metric.into(),
            reference,
            goblog_rs,
            ratio,
        }
    }
}

/// The VIP-only phase, if the load ends with one: the phase whose rates measure the pipeline.
fn vip_phase(report: &Report) -> Option<&PhaseReport> {
    report.phases.last().filter(|p| p.vip_fraction >= 1.0)
}

/// Offers/s and confirmed publishes/s, with where they come from: the VIP-only phase, or else
/// the whole run (from the load's start to the last offer / the last publish).
fn pipeline_rates(report: &Report) -> (&'static str, f64, f64) {
    match vip_phase(report) {
        Some(p) => (
            "VIP-only phase",
            p.offers_per_s,
            p.publish_per_s.unwrap_or(report.publish_per_s),
        ),
        None => ("whole run", report.offers_per_s, report.publish_per_s),
    }
}

/// Against the Go original.
pub fn against_go(report: &Report) -> Vec<Row> {
    let mut rows = Vec::new();
    // Go's HTTP figure is for non-VIP reads: only a phase that is mostly non-VIP compares.
    if let Some(first) = report.phases.first().filter(|p| p.vip_fraction <= 0.1) {
        rows.push(Row::new(
            format!(
                "HTTP req/s, phase 1 (Go: wrk -c50, 0% VIP; ours: {} conn., {:.0}% VIP)",
                report.concurrency,
                first.vip_fraction * 100.0
            ),
            Reference::Number(go::HTTP_REQ_PER_S),
            first.req_per_s,
        ));
    }
    if let Some(last) = vip_phase(report) {
        rows.push(Row::new(
            "VIP req/s, VIP-only phase (Go: highest paced rate it survives)",
            Reference::Number(go::VIP_REQ_PER_S),
            last.req_per_s,
        ));
    }
    let (over, offers, _) = pipeline_rates(report);
    rows.push(Row::new(
        format!("VIP notifications → offers/s, {over} (Go: at that pace)"),
        Reference::Number(go::VIP_REQ_PER_S),
        offers,
    ));
    #[allow(clippy::cast_precision_loss)]
    rows.push(Row::new(
        "VIP reads answered 200 but lost",
        Reference::Text(go::LOST),
        report.lost as f64,
    ));
    if let Some(kb) = report.peak_rss_kb.get("accountservice") {
        rows.push(Row::new(
            "peak RSS accountservice, MB",
            Reference::Number(go::PEAK_RSS_ACCOUNT_MB),
            kb_to_mb(*kb),
        ));
    }
    let vip_peak = report
        .peak_rss_kb
        .iter()
        .filter(|(name, _)| name.starts_with("vipservice"))
        .map(|(_, kb)| *kb)
        .max();
    if let Some(kb) = vip_peak {
        rows.push(Row::new(
            "peak RSS vipservice (highest replica), MB",
            Reference::Number(go::PEAK_RSS_VIP_MB),
            kb_to_mb(kb),
        ));
    }
    if let Some(s) = report
        .outage
        .and_then(|o| o.seconds_back_to_first_offer)
        .filter(|_| report.scenario == "broker-restart")
    {
        rows.push(Row::new(
            "broker back → first offer committed, s",
            Reference::Text(go::BROKER_RESTART),
            s,
        ));
    }
    rows
}

/// Against the raw broker, measured in the same invocation.
pub fn against_raw(report: &Report, raw: RawLimits) -> Vec<Row> {
    let (over, offers, publishes) = pipeline_rates(report);
    vec![
        Row::new(
            format!(
                "confirmed publishes/s, {over} (accountservice) vs raw publish + confirm, quorum"
            ),
            Reference::Number(raw.publish_confirm_quorum),
            publishes,
        ),
        Row::new(
            format!(
                "offers/s, {over} ({} replicas) vs raw consume + ack (classic durable, prefetch 1000)",
                report.vip_replicas
            ),
            Reference::Number(raw.consume_ack),
            offers,
        ),
    ]
}

/// Prints rows as a Markdown table, `reference` naming the reference column.
pub fn print_table(title: &str, reference: &str, rows: &[Row]) {
    println!("{title}");
    println!("| metric | {reference} | goblog-rs | ratio |");
    println!("|---|---:|---:|---:|");
    for row in rows {
        let reference = match row.reference {
            Reference::Number(n) => number(n),
            Reference::Text(t) => t.to_owned(),
        };
        let ratio = row.ratio.map_or("–".to_owned(), |r| format!("{r:.2}×"));
        println!(
            "| {} | {reference} | {} | {ratio} |",
            row.metric,
            number(row.goblog_rs)
        );
    }
}

/// A figure with thousands separators above 100, one decimal below.
fn number(n: f64) -> String {
    if n.abs() >= 100.0 {
        #[allow(clippy::cast_possible_truncation)]
        let digits = (n.round() as i64).unsigned_abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0.0 { format!("-{out}") } else { out }
    } else if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

#[allow(clippy::cast_precision_loss)]
fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_only_between_numbers() {
        assert_eq!(
            Row::new("m", Reference::Number(8_000.0), 4_000.0).ratio,
            Some(0.5)
        );
        assert_eq!(Row::new("m", Reference::Text("x"), 4.0).ratio, None);
        assert_eq!(Row::new("m", Reference::Number(0.0), 4.0).ratio, None);
    }

    #[test]
    fn numbers_read_easily() {
        assert_eq!(number(29_812.4), "29,812");
        assert_eq!(number(1_693.0), "1,693");
        assert_eq!(number(100.0), "100");
        assert_eq!(number(23.84), "23.8");
        assert_eq!(number(0.0), "0");
    }
}
