//! [`OfferDb`]: the redb file of offers and decisions, and the one transaction that records a
//! group of notifications.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeDelta, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};

use super::{Counts, Decision, Offer, OfferError, OfferRule, Outcome};
use common::notification::VipNotification as Notification;

/// (account id, offer sequence number) → [`Offer`] JSON; an account's offers are contiguous
/// and in the order they were made.
const OFFERS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("offers");
/// `message_id` → [`Decision`] JSON, for every processed notification.
const DECISIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("decisions");
/// Running totals; see [`Totals`].
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

const OFFERS_KEY: &str = "offers";
const NO_OFFERS_KEY: &str = "no_offers";
const DUPLICATES_KEY: &str = "duplicates";

/// redb's page cache. Its default (1 GiB) grows the process with the file: every decision is
/// kept, so a long drain of `vip_queue` would keep tens of MB of pages resident. Writes touch
/// the newest pages and reads one account's range; a few MiB hold both.
const CACHE_BYTES: usize = 4 << 20;

/// The VIP offer database. Queries may run from any thread; writes go through
/// [`super::OfferWriter`].
#[derive(Debug)]
pub struct OfferDb {
    db: Database,
    path: PathBuf,
    committed_batches: AtomicU64,
}

impl OfferDb {
    /// Opens the database at `path`, creating the file and its tables if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OfferError> {
        let path = path.as_ref().to_path_buf();
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|source| OfferError::Open {
                path: path.clone(),
                source: Box::new(source),
            })?;
        let offer_db = Self {
            db,
            path,
            committed_batches: AtomicU64::new(0),
        };
        if !offer_db.has_tables()? {
            offer_db.create_tables()?;
        }
        Ok(offer_db)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The offers made to `account_id`, newest first.
    pub fn offers_for(&self, account_id: &str) -> Result<Vec<Offer>, OfferError> {
        let action = "read an account's offers";
        let txn = self.db.begin_read().map_err(self.fail(action))?;
        let offers = txn.open_table(OFFERS).map_err(self.fail(action))?;
        let rows = offers
            .range((account_id, 0)..=(account_id, u64::MAX))
            .map_err(self.fail(action))?;
        rows.rev()
            .map(|row| {
                let (_, offer) = row.map_err(self.fail(action))?;
                self.decode(action, offer.value())
            })
            .collect()
    }

    /// The decision recorded for a `message_id`, if it was processed.
    pub fn decision(&self, message_id: &str) -> Result<Option<Decision>, OfferError> {
        let action = "read a decision";
        let txn = self.db.begin_read().map_err(self.fail(action))?;
        let decisions = txn.open_table(DECISIONS).map_err(self.fail(action))?;
        let decision = decisions.get(message_id).map_err(self.fail(action))?;
        decision
            .map(|decision| self.decode(action, decision.value()))
            .transpose()
    }

    /// Totals since the database was created.
    pub fn counts(&self) -> Result<Counts, OfferError> {
        let action = "read the counters";
        let txn = self.db.begin_read().map_err(self.fail(action))?;
        let counters = txn.open_table(COUNTERS).map_err(self.fail(action))?;
        let get = |key| -> Result<u64, OfferError> {
            let value = counters.get(key).map_err(self.fail(action))?;
            Ok(value.map_or(0, |v| v.value()))
        };
        let offers = get(OFFERS_KEY)?;
        let no_offers = get(NO_OFFERS_KEY)?;
        Ok(Counts {
            processed: offers + no_offers,
            offers,
            no_offers,
            duplicates: get(DUPLICATES_KEY)?,
        })
    }

    /// Write transactions committed since this database was opened: with group commit, far
    /// fewer than notifications recorded.
    pub fn committed_batches(&self) -> u64 {
        self.committed_batches.load(Ordering::Relaxed)
    }

    /// Whether the database can still serve reads (for `/health`).
    pub fn is_usable(&self) -> bool {
        self.db
            .begin_read()
            .is_ok_and(|txn| txn.open_table(COUNTERS).is_ok())
    }

    /// Records a group of notifications in one durable transaction, in order, and returns each
    /// one's outcome. A `message_id` already recorded, in an earlier group or earlier in this
    /// one, is a duplicate. On error nothing of the group is recorded.
    pub(super) fn record_batch<'a>(
        &self,
        batch: impl IntoIterator<Item = (&'a str, &'a Notification)>,
        rule: &OfferRule,
    ) -> Result<Vec<Outcome>, OfferError> {
        let action = "record notifications";
        let txn = self.db.begin_write().map_err(self.fail(action))?;
        let outcomes = {
            let mut offers = txn.open_table(OFFERS).map_err(self.fail(action))?;
            let mut decisions = txn.open_table(DECISIONS).map_err(self.fail(action))?;
            let mut counters = txn.open_table(COUNTERS).map_err(self.fail(action))?;
            let mut totals = Totals::load(&counters).map_err(self.fail(action))?;
            let now = Utc::now();
            let mut outcomes = Vec::new();
            for (message_id, notification) in batch {
                if decisions
                    .get(message_id)
                    .map_err(self.fail(action))?
                    .is_some()
                {
                    totals.duplicates += 1;
                    outcomes.push(Outcome::Duplicate);
                    continue;
                }
                let offered = self.may_offer(&offers, notification, rule)?;
                if offered {
                    let offer = Offer {
                        message_id: message_id.to_owned(),
                        account_id: notification.account_id.clone(),
                        text: rule.text.clone(),
                        read_at: notification.read_at,
                        offered_at: now,
                    };
                    let key = (notification.account_id.as_str(), totals.offers);
                    let value = self.encode(action, &offer)?;
                    offers
                        .insert(key, value.as_slice())
                        .map_err(self.fail(action))?;
                    totals.offers += 1;
                } else {
                    totals.no_offers += 1;
                }
                let decision = Decision {
                    account_id: notification.account_id.clone(),
                    offered,
                    processed_at: now,
                };
                let value = self.encode(action, &decision)?;
                decisions
                    .insert(message_id, value.as_slice())
                    .map_err(self.fail(action))?;
                outcomes.push(if offered {
                    Outcome::Offered
                } else {
                    Outcome::NoOffer
                });
            }
            totals.store(&mut counters).map_err(self.fail(action))?;
            outcomes
        };
        txn.commit().map_err(self.fail(action))?;
        self.committed_batches.fetch_add(1, Ordering::Relaxed);
        Ok(outcomes)
    }

    /// Whether the rule allows an offer for `notification`, given the account's last offer.
    fn may_offer(
        &self,
        offers: &Table<(&str, u64), &[u8]>,
        notification: &Notification,
        rule: &OfferRule,
    ) -> Result<bool, OfferError> {
        if rule.min_interval.is_zero() {
            return Ok(true);
        }
        let action = "read an account's last offer";
        let account = notification.account_id.as_str();
        let last = offers
            .range((account, 0)..=(account, u64::MAX))
            .map_err(self.fail(action))?
            .next_back()
            .transpose()
            .map_err(self.fail(action))?;
        let Some((_, last)) = last else {
            return Ok(true);
        };
        let last: Offer = self.decode(action, last.value())?;
        let min_interval = TimeDelta::from_std(rule.min_interval).unwrap_or(TimeDelta::MAX);
        Ok(notification.read_at - last.read_at >= min_interval)
    }

    fn has_tables(&self) -> Result<bool, OfferError> {
        let action = "look for its tables";
        let txn = self.db.begin_read().map_err(self.fail(action))?;
        match txn.open_table(COUNTERS) {
            Ok(_) => Ok(true),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
            Err(e) => Err(self.fail(action)(e)),
        }
    }

    fn create_tables(&self) -> Result<(), OfferError> {
        let action = "create its tables";
        let txn = self.db.begin_write().map_err(self.fail(action))?;
        txn.open_table(OFFERS).map_err(self.fail(action))?;
        txn.open_table(DECISIONS).map_err(self.fail(action))?;
        txn.open_table(COUNTERS).map_err(self.fail(action))?;
        txn.commit().map_err(self.fail(action))
    }

    /// Turns a redb failure into an [`OfferError`] naming the file and the action.
    fn fail<E: Into<redb::Error>>(&self, action: &'static str) -> impl Fn(E) -> OfferError + '_ {
        move |source| OfferError::Database {
            path: self.path.clone(),
            action,
            source: Box::new(source.into()),
        }
    }

    fn encode(
        &self,
        action: &'static str,
        record: &impl serde::Serialize,
    ) -> Result<Vec<u8>, OfferError> {
        serde_json::to_vec(record).map_err(|source| self.record_error(action, source))
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        action: &'static str,
        bytes: &[u8],
    ) -> Result<T, OfferError> {
        serde_json::from_slice(bytes).map_err(|source| self.record_error(action, source))
    }

    fn record_error(&self, action: &'static str, source: serde_json::Error) -> OfferError {
        OfferError::Record {
            path: self.path.clone(),
            action,
            source,
        }
    }
}

/// The counters, read once per group and written back once.
struct Totals {
    offers: u64,
    no_offers: u64,
    duplicates: u64,
}

impl Totals {
    fn load(counters: &Table<&str, u64>) -> Result<Self, redb::StorageError> {
        let get = |key| -> Result<u64, redb::StorageError> {
            Ok(counters.get(key)?.map_or(0, |v| v.value()))
        };
        Ok(Self {
            offers: get(OFFERS_KEY)?,
            no_offers: get(NO_OFFERS_KEY)?,
            duplicates: get(DUPLICATES_KEY)?,
        })
    }

    fn store(&self, counters: &mut Table<&str, u64>) -> Result<(), redb::StorageError> {
        counters.insert(OFFERS_KEY, self.offers)?;
        counters.insert(NO_OFFERS_KEY, self.no_offers)?;
        counters.insert(DUPLICATES_KEY, self.duplicates)?;
        Ok(())
    }
}
