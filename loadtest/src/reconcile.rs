//! After the load: wait for the pipeline to drain, then account for every accepted VIP read.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::broker::Broker;
use crate::error::Error;
use crate::ids::IdRange;
use crate::load::new_histogram;
use crate::prom::metric_sum;

// The services' own metric names, so the two cannot drift apart.
use accountservice::notify::metric::{BUFFERED, FAILED, OUTBOX_DEPTH, PUBLISHED};
use vipservice::metrics::{
    CLAIMS_PENDING, CONSUMED, DEAD_LETTERED, DUPLICATES_DROPPED as DUPLICATES, OFFERS_MADE,
};

/// Where the services and the queue are.
#[derive(Debug, Clone)]
pub struct Targets {
    pub account_url: String,
    pub vip_urls: Vec<String>,
    pub vip_queue: String,
    pub vip_ids: IdRange,
}

/// accountservice's notification counters (since its last start) and outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AccountFigures {
    pub published: f64,
    pub failed: f64,
    pub buffered: f64,
    pub outbox: f64,
}

/// vipservice counters, summed over the replicas (each since its last start).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VipFigures {
    pub consumed: f64,
    pub offers_made: f64,
    pub duplicates_dropped: f64,
    pub dead_lettered: f64,
    /// Claims not yet ordered by the ledger: their deliveries are unacked or their offers are
    /// still to come, so the pipeline has not drained while any is left.
    pub claims_pending: f64,
}

/// The offers in the stores, by message id.
#[derive(Debug)]
pub struct OfferFigures {
    /// Offers summed over the replica stores.
    pub total: u64,
    /// Distinct message ids among them.
    pub distinct: u64,
    /// Message ids offered by more than one store.
    pub cross_store_duplicates: u64,
    /// A few of those message ids, to look up in the logs.
    pub duplicate_examples: Vec<String>,
    /// `offeredAt - readAt` of each distinct offer, in µs.
    pub end_to_end: Histogram<u64>,
    /// Distinct offers whose `offeredAt` falls in each window between consecutive boundaries
    /// asked for (the phases of the load).
    pub by_phase: Vec<u64>,
    /// The latest `offeredAt`: when the last notification became an offer.
    pub last_offered_at: Option<DateTime<Utc>>,
    /// The earliest `offeredAt` later than the instant asked for (the broker back after an
    /// outage): when the pipeline committed its first offer again.
    pub first_offered_after: Option<DateTime<Utc>>,
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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OfferView {
    message_id: String,
    read_at: DateTime<Utc>,
    offered_at: DateTime<Utc>,
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
        sum.claims_pending += get(CLAIMS_PENDING);
    }
    Ok(sum)
}

/// Waits until the outbox is empty, the queue has nothing ready, no replica has a claim
/// pending and the consumers' counters stopped moving, or until `deadline` passes.
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
            Ok((account, vip, Some(0))) if account.outbox == 0.0 && vip.claims_pending == 0.0 => {
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

/// Reads every VIP account's offers from every replica. `boundaries`: the instants between
/// which to count offers (ascending); `after`: the instant whose first later offer to find.
pub async fn offer_figures(
    client: &reqwest::Client,
    targets: &Targets,
    boundaries: &[DateTime<Utc>],
    after: Option<DateTime<Utc>>,
) -> Result<OfferFigures, Error> {
    let mut by_phase = vec![0; boundaries.len().saturating_sub(1)];
    let mut stores_by_id: HashMap<String, u32> = HashMap::new();
    let mut end_to_end = new_histogram()?;
    let mut total = 0;
    let mut last_offered_at: Option<DateTime<Utc>> = None;
    let mut first_offered_after: Option<DateTime<Utc>> = None;
    for base in &targets.vip_urls {
        for id in targets.vip_ids.iter() {
            let url = format!("{base}/offers/{id}");
            let response = client
                .get(&url)
                .send()
                .await
                .map_err(|source| Error::Http {
                    url: url.clone(),
                    source,
                })?;
            if response.status().as_u16() == 404 {
                continue; // no offers for this account in this store
            }
            if !response.status().is_success() {
                return Err(Error::Status {
                    url,
                    status: response.status().as_u16(),
                });
            }
            let offers: Vec<OfferView> = response.json().await.map_err(|source| Error::Http {
                url: url.clone(),
                source,
            })?;
            for offer in offers {
                total += 1;
                last_offered_at = last_offered_at.max(Some(offer.offered_at));
                if after.is_some_and(|a| offer.offered_at > a) {
                    first_offered_after = Some(
                        first_offered_after.map_or(offer.offered_at, |f| f.min(offer.offered_at)),
                    );
                }
                let seen = stores_by_id.entry(offer.message_id).or_default();
                *seen += 1;
                if *seen == 1 {
                    let window = boundaries.partition_point(|b| *b <= offer.offered_at);
                    if let Some(n) = window.checked_sub(1).and_then(|w| by_phase.get_mut(w)) {
                        *n += 1;
                    }
                    let micros = (offer.offered_at - offer.read_at)
                        .num_microseconds()
                        .and_then(|m| u64::try_from(m).ok())
                        .unwrap_or(0);
                    end_to_end.saturating_record(micros.max(1));
                }
            }
        }
    }
    let distinct = stores_by_id.len() as u64;
    let mut duplicate_examples: Vec<String> = stores_by_id
        .iter()
        .filter(|&(_, &n)| n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    duplicate_examples.sort();
    duplicate_examples.truncate(5);
    Ok(OfferFigures {
        total,
        distinct,
        cross_store_duplicates: stores_by_id.values().filter(|&&n| n > 1).count() as u64,
        duplicate_examples,
        end_to_end,
        by_phase,
        last_offered_at,
        first_offered_after,
    })
}
