//! The faults a cluster scenario inflicted, as `loadtest cluster` records them in a file for
//! the load test to report: one JSON line per fault once its node is back, then a last line
//! when the schedule is over (with its error, if it failed).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::load::unix_ms;
use crate::reconcile::WindowOffers;

/// What was done to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// SIGKILL, as a crash; started again after a pause.
    Kill,
    /// A graceful stop (`rabbitmqctl stop`) and a start at once, as a rolling upgrade does.
    Restart,
}

/// One fault, with when each thing happened, in ms since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub action: Action,
    /// Why this node, for the report: "the leader of loadtest_vip.x", "accountservice's node".
    pub chosen_as: String,
    pub node: usize,
    pub node_name: String,
    /// The SIGKILL sent, or the stop asked for.
    pub at_unix_ms: u64,
    /// No process of the node left.
    pub gone_unix_ms: u64,
    /// Booted again and back in the cluster.
    pub back_unix_ms: u64,
    /// Its member of the work queue online again.
    pub online_unix_ms: u64,
}

/// A line of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Entry {
    Fault(FaultRecord),
    /// The schedule is over: every fault done, or `error` stopped it.
    Done {
        error: Option<String>,
    },
}

/// Writes the file, a line at a time, each one flushed: the load test polls it.
pub struct Recorder {
    path: PathBuf,
    file: File,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Self, Error> {
        let file = File::create(path).map_err(|source| Error::Io {
            action: format!("create the faults file {}", path.display()),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    pub fn fault(&mut self, record: FaultRecord) -> Result<(), Error> {
        self.write(&Entry::Fault(record))
    }

    pub fn done(&mut self, error: Option<String>) -> Result<(), Error> {
        self.write(&Entry::Done { error })
    }

    fn write(&mut self, entry: &Entry) -> Result<(), Error> {
        let failed = |source| Error::Io {
            action: format!("write to the faults file {}", self.path.display()),
            source,
        };
        let line = serde_json::to_string(entry).map_err(|e| failed(e.into()))?;
        writeln!(self.file, "{line}").map_err(failed)?;
        self.file.flush().map_err(failed)
    }
}

/// What the file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faults {
    pub records: Vec<FaultRecord>,
    /// `None` while the schedule runs; then `Some(Ok)`, or `Some(Err(what stopped it))`.
    pub outcome: Option<Result<(), String>>,
}

impl Faults {
    /// Reads the file; a file not written yet is a schedule not begun.
    pub fn read(path: &Path) -> Result<Self, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|reason| Error::Faults {
                path: path.display().to_string(),
                reason,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                records: Vec::new(),
                outcome: None,
            }),
            Err(e) => Err(Error::Faults {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        let mut faults = Self {
            records: Vec::new(),
            outcome: None,
        };
        // Only complete lines: the writer may be half-way through the last one.
        let complete = text.rsplit_once('\n').map_or("", |(lines, _)| lines);
        for line in complete.lines().filter(|l| !l.trim().is_empty()) {
            let entry: Entry = serde_json::from_str(line).map_err(|e| format!("{line:?}: {e}"))?;
            match entry {
                Entry::Fault(record) => faults.records.push(record),
                Entry::Done { error } => faults.outcome = Some(error.map_or(Ok(()), Err)),
            }
        }
        Ok(faults)
    }
}

/// What the report says about a fault.
#[derive(Debug, Clone, Serialize)]
pub struct FaultReport {
    pub action: Action,
    pub chosen_as: String,
    pub node: usize,
    pub node_name: String,
    pub at_unix_ms: u64,
    /// From the SIGKILL (or the stop asked for) to the node running and clustered again.
    pub seconds_until_back: f64,
    /// From the SIGKILL (or the stop asked for) to its queue member online again.
    pub seconds_until_online: f64,
    /// Requests that failed (HTTP status or transport) from the fault until its member was
    /// online again.
    pub http_errors_during: u64,
    /// From the fault to the first offer committed after it (`offeredAt`, the offer's
    /// commit), as broker-restart measures from the broker's return. Deliveries that
    /// vipservice already held commit in the first milliseconds whatever the broker does.
    pub seconds_to_first_offer: Option<f64>,
    /// From the fault to the first offer of a VIP read made after it: the whole pipeline
    /// (outbox, publish, the queue, a consumer) working again for new reads.
    pub seconds_to_first_offer_of_a_later_read: Option<f64>,
    /// The longest a VIP read made from the fault until its member was online again waited
    /// for its offer (`offeredAt - readAt`).
    pub slowest_read_to_offer_seconds: Option<f64>,
}

impl FaultReport {
    pub fn new(record: &FaultRecord, http_errors_during: u64, offers: WindowOffers) -> Self {
        let at = record.at_unix_ms;
        let seconds_since = |ms: u64| ms.saturating_sub(at) as f64 / 1000.0;
        let seconds_to = |t: Option<DateTime<Utc>>| {
            t.map(|t| (unix_ms_of(t).saturating_sub(at)) as f64 / 1000.0)
        };
        Self {
            action: record.action,
            chosen_as: record.chosen_as.clone(),
            node: record.node,
            node_name: record.node_name.clone(),
            at_unix_ms: at,
            seconds_until_back: seconds_since(record.back_unix_ms),
            seconds_until_online: seconds_since(record.online_unix_ms),
            http_errors_during,
            seconds_to_first_offer: seconds_to(offers.first),
            seconds_to_first_offer_of_a_later_read: seconds_to(offers.first_of_a_later_read),
            slowest_read_to_offer_seconds: offers
                .slowest_read_to_offer
                .and_then(|d| d.to_std().ok())
                .map(|d| d.as_secs_f64()),
        }
    }

    /// One line of the human table.
    pub fn describe(&self) -> String {
        let verb = match self.action {
            Action::Kill => "SIGKILL",
            Action::Restart => "restart",
        };
        let figure = |s: Option<f64>| s.map_or("none".to_owned(), |s| format!("{s:.2} s"));
        format!(
            "{verb} node {} ({}): back {:.1} s, member online {:.1} s, {} HTTP errors; \
             first offer {}, of a later read {}; slowest read → offer meanwhile {}",
            self.node,
            self.chosen_as,
            self.seconds_until_back,
            self.seconds_until_online,
            self.http_errors_during,
            figure(self.seconds_to_first_offer),
            figure(self.seconds_to_first_offer_of_a_later_read),
            figure(self.slowest_read_to_offer_seconds),
        )
    }
}

/// The instant `t` in ms since the Unix epoch (0 before it).
pub fn unix_ms_of(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    unix_ms(std::time::SystemTime::now())
}

/// `ms` since the Unix epoch as an instant.
pub fn instant_of(ms: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(node: usize, at: u64) -> FaultRecord {
        FaultRecord {
            action: Action::Kill,
            chosen_as: "the leader of q".into(),
            node,
            node_name: format!("n{node}@localhost"),
            at_unix_ms: at,
            gone_unix_ms: at + 100,
            back_unix_ms: at + 12_000,
            online_unix_ms: at + 12_500,
        }
    }

    #[test]
    fn reads_what_the_recorder_wrote_and_only_whole_lines() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("faults");
        assert_eq!(Faults::read(&path).expect("no file yet").outcome, None);
        let mut recorder = Recorder::create(&path).expect("created");
        recorder.fault(record(1, 1_000)).expect("written");
        let read = Faults::read(&path).expect("read");
        assert_eq!((read.records.len(), read.outcome), (1, None));
        recorder.fault(record(2, 20_000)).expect("written");
        recorder.done(None).expect("written");
        let read = Faults::read(&path).expect("read");
        assert_eq!(read.records, [record(1, 1_000), record(2, 20_000)]);
        assert_eq!(read.outcome, Some(Ok(())));

        let partial = "{\"event\":\"done\",\"error\":\"node 1: timed out\"}\n{\"event\":\"fau";
        assert_eq!(
            Faults::parse(partial).expect("parsed").outcome,
            Some(Err("node 1: timed out".into()))
        );
        assert!(Faults::parse("not json\n").is_err());
    }

    #[test]
    fn measures_from_the_fault() {
        let offers = WindowOffers {
            first: instant_of(10_020),
            first_of_a_later_read: instant_of(13_250),
            slowest_read_to_offer: Some(chrono::TimeDelta::milliseconds(4_500)),
        };
        let report = FaultReport::new(&record(1, 10_000), 4, offers);
        assert_eq!(report.seconds_until_back, 12.0);
        assert_eq!(report.seconds_until_online, 12.5);
        assert_eq!(report.seconds_to_first_offer, Some(0.02));
        assert_eq!(report.seconds_to_first_offer_of_a_later_read, Some(3.25));
        assert_eq!(report.slowest_read_to_offer_seconds, Some(4.5));
        let nothing = FaultReport::new(&record(1, 10_000), 0, WindowOffers::default());
        assert_eq!(nothing.seconds_to_first_offer, None);
    }
}
