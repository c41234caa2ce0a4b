//! After the load: wait for the pipeline to drain, then account for every accepted VIP read.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use sqlx::AnyConnection;
use sqlx::Connection;
use sqlx::Row;
use sqlx::any::AnyConnectOptions;

use crate::broker::Broker;
use crate::error::Error;
use crate::load::new_histogram;
use crate::prom::{histogram_quantile, metric_sum};

// The services' metric names, from the wire contract they take them from too.
use common::contract::accountservice::{
    BUFFERED, COMMIT_TO_CONFIRM, FAILED, OUTBOX_DEPTH, PUBLISHED,
};
use common::contract::vipservice::{
    CONSUMED, DEAD_LETTERED, DUPLICATES_DROPPED as DUPLICATES, OFFERS_MADE,
};

/// Where the services and the queue are.
#[derive(Debug, Clone)]
pub struct Targets {
    pub account_url: String,
    pub vip_urls: Vec<String>,
    pub vip_queue: String,
    /// The offers database every vipservice replica writes (`offers.database_url`).
    pub database_url: String,
}

/// accountservice's notification counters (since its last start) and outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AccountFigures {
    pub published: f64,
    pub failed: f64,
    pub buffered: f64,
    pub outbox: f64,
    /// From the commit to the outbox to the broker's confirm, seconds (since its last start).
    pub commit_to_confirm_p99: Option<f64>,
}

/// vipservice counters, summed over the replicas (each since its last start).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VipFigures {
    pub consumed: f64,
    pub offers_made: f64,
    pub duplicates_dropped: f64,
    pub dead_lettered: f64,
}

/// The offers in the database, by message id.
#[derive(Debug)]
pub struct OfferFigures {
    /// Offer rows.
    pub total: u64,
    /// Distinct message ids among them.
    pub distinct: u64,
    /// Message ids with more than one offer row.
    pub duplicates: u64,
    /// A few of those message ids, to look up in the logs.
    pub duplicate_examples: Vec<String>,
    /// `offeredAt - readAt` of each distinct offer, in µs.
    pub end_to_end: Histogram<u64>,
    /// Distinct offers whose `offeredAt` falls in each window between consecutive boundaries
    /// asked for (the phases of the load).
    pub by_phase: Vec<u64>,
    /// The latest `offeredAt`: when the last notification became an offer.
    pub last_offered_at: Option<DateTime<Utc>>,
    /// For each window asked for (an outage, a fault), in the same order: its offers.
    pub windows: Vec<WindowOffers>,
}

/// A stretch of time a fault took: from `from` (the broker back, a node killed) to `to` (the
/// node back with its queue member online).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The offers that tell how the pipeline came through a [`Window`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowOffers {
    /// The earliest `offeredAt` later than its start: when the pipeline committed an offer.
    pub first: Option<DateTime<Utc>>,
    /// The earliest `offeredAt` of a read made later than its start (`readAt`): when a read
    /// made since went all the way through.
    pub first_of_a_later_read: Option<DateTime<Utc>>,
    /// The longest `offeredAt - readAt` of the reads made within it: the longest a
    /// notification of a read made meanwhile waited for its offer.
    pub slowest_read_to_offer: Option<chrono::TimeDelta>,
}

impl WindowOffers {
    fn see(&mut self, window: Window, read_at: DateTime<Utc>, offered_at: DateTime<Utc>) {
        let earliest =
            |first: Option<DateTime<Utc>>| Some(first.map_or(offered_at, |f| f.min(offered_at)));
        if offered_at > window.from {
            self.first = earliest(self.first);
        }
        if read_at > window.from {
            self.first_of_a_later_read = earliest(self.first_of_a_later_read);
        }
        if (window.from..=window.to).contains(&read_at) {
            let waited = offered_at - read_at;
            self.slowest_read_to_offer = self.slowest_read_to_offer.max(Some(waited));
        }
    }
}

/// How the wait for the pipeline to drain went.
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    pub drained: bool,
    pub took: Duration,
    /// The last moment accountservice's confirmed-publish counter was seen moving (the end
    /// of the load if it never moved after it), to within the 1 s poll.
    pub publishing_ended: Instant,
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, Error> {
    let http = |source| Error::Http {
        url: url.to_owned(),
        source,
    };
    let response = client.get(url).send().await.map_err(http)?;
    if !response.status().is_success() {
        return Err(Error::Status {
            url: url.to_owned(),
            status: response.status().as_u16(),
        });
    }
    response.text().await.map_err(http)
}

fn required(text: &str, name: &'static str, url: &str) -> Result<f64, Error> {
    metric_sum(text, name).ok_or_else(|| Error::MissingMetric {
        name,
        url: url.to_owned(),
    })
}

pub async fn account_figures(
    client: &reqwest::Client,
    targets: &Targets,
) -> Result<AccountFigures, Error> {
    let url = format!("{}/metrics", targets.account_url);
    let text = get_text(client, &url).await?;
    Ok(AccountFigures {
        published: required(&text, PUBLISHED, &url)?,
        failed: required(&text, FAILED, &url)?,
        buffered: required(&text, BUFFERED, &url)?,
        // The gauge appears once the outbox was first touched; absent means empty.
        outbox: metric_sum(&text, OUTBOX_DEPTH).unwrap_or(0.0),
        commit_to_confirm_p99: histogram_quantile(&text, COMMIT_TO_CONFIRM, 0.99),
    })
}

pub async fn vip_figures(client: &reqwest::Client, targets: &Targets) -> Result<VipFigures, Error> {
    let mut sum = VipFigures::default();
    for base in &targets.vip_urls {
        let url = format!("{base}/metrics");
        let text = get_text(client, &url).await?;
        let get = |name| metric_sum(&text, name).unwrap_or(0.0);
        sum.consumed += get(CONSUMED);
        sum.offers_made += get(OFFERS_MADE);
        sum.duplicates_dropped += get(DUPLICATES);
        sum.dead_lettered += get(DEAD_LETTERED);
    }
    Ok(sum)
}

/// Waits until the outbox is empty, the queue has nothing ready and the consumers' counters
/// stopped moving, or until `deadline` passes.
pub async fn wait_drained(
    client: &reqwest::Client,
    broker: &Broker,
    targets: &Targets,
    deadline: Duration,
) -> Drain {
    let started = Instant::now();
    let mut publishing_ended = started;
    let mut published: Option<f64> = None;
    let mut last: Option<(AccountFigures, VipFigures)> = None;
    while started.elapsed() < deadline {
        let snapshot = async {
            let account = account_figures(client, targets).await?;
            let vip = vip_figures(client, targets).await?;
            let depth = broker.depth(&targets.vip_queue).await?;
            Ok::<_, Error>((account, vip, depth))
        }
        .await;
        if let Ok((account, _, _)) = &snapshot {
            if published.is_some_and(|p| p != account.published) {
                publishing_ended = Instant::now();
            }
            published = Some(account.published);
        }
        match snapshot {
            Ok((account, vip, Some(0))) if account.outbox == 0.0 => {
                if last == Some((account, vip)) {
                    return Drain {
                        drained: true,
                        took: started.elapsed(),
                        publishing_ended,
                    };
                }
                last = Some((account, vip));
            }
            Ok(_) => last = None,
            Err(e) => {
                eprintln!("waiting for the pipeline to drain: {e}");
                last = None;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Drain {
        drained: false,
        took: started.elapsed(),
        publishing_ended,
    }
}

/// Reads every offer from the database in one query. `boundaries`: the instants between
/// which to count offers (ascending); `windows`: the stretches to give [`WindowOffers`] of.
pub async fn offer_figures(
    targets: &Targets,
    boundaries: &[DateTime<Utc>],
    windows: &[Window],
) -> Result<OfferFigures, Error> {
    let database = |source| Error::Database {
        url: common::redact::redact_url(&targets.database_url),
        source,
    };
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(&targets.database_url).map_err(database)?;
    let mut connection = AnyConnection::connect_with(&options)
        .await
        .map_err(database)?;
    let rows = sqlx::query("SELECT message_id, read_at, offered_at FROM offers")
        .fetch_all(&mut connection)
        .await
        .map_err(database)?;
    let _ = connection.close().await;

    let mut by_phase = vec![0; boundaries.len().saturating_sub(1)];
    let mut seen: HashSet<String> = HashSet::with_capacity(rows.len());
    let mut duplicate_examples = Vec::new();
    let mut end_to_end = new_histogram()?;
    let mut last_offered_at: Option<DateTime<Utc>> = None;
    let mut window_offers = vec![WindowOffers::default(); windows.len()];
    for row in &rows {
        let message_id: String = row.try_get(0).map_err(database)?;
        let read_at = instant(row.try_get(1).map_err(database)?);
        let offered_at = instant(row.try_get(2).map_err(database)?);
        last_offered_at = last_offered_at.max(Some(offered_at));
        for (offers, window) in window_offers.iter_mut().zip(windows) {
            offers.see(*window, read_at, offered_at);
        }
        if !seen.insert(message_id.clone()) {
            duplicate_examples.push(message_id);
            continue;
        }
        let window = boundaries.partition_point(|b| *b <= offered_at);
        if let Some(n) = window.checked_sub(1).and_then(|w| by_phase.get_mut(w)) {
            *n += 1;
        }
        let micros = (offered_at - read_at)
            .num_microseconds()
            .and_then(|m| u64::try_from(m).ok())
            .unwrap_or(0);
        end_to_end.saturating_record(micros.max(1));
    }
    let duplicates = duplicate_examples.len() as u64;
    duplicate_examples.sort();
    duplicate_examples.truncate(5);
    Ok(OfferFigures {
        total: rows.len() as u64,
        distinct: seen.len() as u64,
        duplicates,
        duplicate_examples,
        end_to_end,
        by_phase,
        last_offered_at,
        windows: window_offers,
    })
}

/// An offers-table instant: microseconds since the epoch.
fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_has_its_first_offers_and_its_slowest_read() {
        let at = |ms| DateTime::from_timestamp_millis(ms).expect("an instant");
        let window = Window {
            from: at(1_000),
            to: at(2_000),
        };
        let mut offers = WindowOffers::default();
        // (readAt, offeredAt): reads made before the window, one offered in it; reads made in
        // it; a read made after it, slower than any made in it.
        for (read, offered) in [
            (900, 950),
            (990, 1_010),
            (1_500, 3_000),
            (1_600, 2_500),
            (2_500, 9_000),
        ] {
            offers.see(window, at(read), at(offered));
        }
        assert_eq!(offers.first, Some(at(1_010)));
        assert_eq!(offers.first_of_a_later_read, Some(at(2_500)));
        assert_eq!(
            offers.slowest_read_to_offer,
            Some(chrono::TimeDelta::milliseconds(1_500))
        );
    }
}
