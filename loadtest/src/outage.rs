//! The outage a fault scenario caused, as `scripts/loadtest.sh` records it in a file: a line
//! `down <unix ms>` when it took something away (the broker stopped or blocked, the offers
//! database stopped), a line `back <unix ms>` once it was back.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Error;

/// When the outage began and ended, in ms since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub down_ms: u64,
    pub back_ms: u64,
}

impl Outage {
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Outage {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text).map_err(|reason| Error::Outage {
            path: path.display().to_string(),
            reason,
        })
    }

    fn parse(text: &str) -> Result<Self, String> {
        let (mut down, mut back) = (None, None);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let (key, value) = line
                .split_once(' ')
                .ok_or_else(|| format!("{line:?} is not `down|back <unix ms>`"))?;
            let ms: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("{line:?}: not a number of ms"))?;
            match key {
                "down" => down = Some(ms),
                "back" => back = Some(ms),
                _ => return Err(format!("{line:?}: unknown key")),
            }
        }
        match (down, back) {
            (Some(down_ms), Some(back_ms)) if down_ms <= back_ms => Ok(Self { down_ms, back_ms }),
            (Some(_), Some(_)) => Err("`back` is before `down`".into()),
            _ => Err("needs a `down` line and a `back` line".into()),
        }
    }

    /// The moment the outage ended.
    pub fn back(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(i64::try_from(self.back_ms).ok()?)
    }
}

/// What the report says about an outage.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OutageReport {
    pub down_unix_ms: u64,
    pub back_unix_ms: u64,
    pub seconds: f64,
    /// Requests that failed (HTTP status or transport) during the outage.
    pub http_errors_during: u64,
    /// From the end of the outage to the first offer committed after it (`offeredAt` is the
    /// offer's commit); `None` if no offer was committed after it.
    pub seconds_back_to_first_offer: Option<f64>,
}

impl OutageReport {
    pub fn new(
        outage: Outage,
        http_errors_during: u64,
        first_offer_after: Option<DateTime<Utc>>,
    ) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let seconds = (outage.back_ms - outage.down_ms) as f64 / 1000.0;
        let back = outage.back();
        let seconds_back_to_first_offer = first_offer_after
            .zip(back)
            .and_then(|(first, back)| (first - back).num_microseconds())
            .map(|us| {
                #[allow(clippy::cast_precision_loss)]
                let s = us as f64 / 1e6;
                s
            });
        Self {
            down_unix_ms: outage.down_ms,
            back_unix_ms: outage.back_ms,
            seconds,
            http_errors_during,
            seconds_back_to_first_offer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_down_and_back() {
        let outage = Outage::parse("down 1000\nback 6500\n").unwrap();
        assert_eq!(
            outage,
            Outage {
                down_ms: 1000,
                back_ms: 6500
            }
        );
        assert!(Outage::parse("down 1000\n").is_err());
        assert!(Outage::parse("down 7000\nback 6500\n").is_err());
        assert!(Outage::parse("down x\nback 6500\n").is_err());
        assert!(Outage::parse("gone 1\nback 2\n").is_err());
    }

    #[test]
    fn measures_from_the_end_of_the_outage_to_the_first_offer() {
        let outage = Outage {
            down_ms: 1_000,
            back_ms: 6_500,
        };
        let first = DateTime::from_timestamp_millis(8_750);
        let report = OutageReport::new(outage, 3, first);
        assert_eq!(report.seconds, 5.5);
        assert_eq!(report.http_errors_during, 3);
        assert_eq!(report.seconds_back_to_first_offer, Some(2.25));
        assert_eq!(
            OutageReport::new(outage, 0, None).seconds_back_to_first_offer,
            None
        );
    }
}
