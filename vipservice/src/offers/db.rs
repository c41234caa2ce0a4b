//! [`OfferDb`]: the redb file of offers and decisions, and the one transaction that records a
//! group of notifications.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeDelta, Utc};
use redb::{Builder, Database, ReadableDatabase, ReadableTable, Table, TableDefinition};

use super::{Claim, Counts, Decision, Offer, OfferError, OfferRule, Ordered, Outcome, Resolved};
use common::notification::VipNotification as Notification;

/// Memory redb may use to cache pages. Its default (1 GiB) keeps every page written until
/// then, so the process grew with the store (95 MB after 100k offers); the hot pages here are
/// the B-tree's upper levels and the last leaves, and the rest is in the OS page cache anyway.
const CACHE_SIZE: usize = 4 << 20;

/// (account id, offer sequence number) → [`Offer`] JSON; an account's offers are contiguous
/// and in the order they were made.
const OFFERS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("offers");
/// `message_id` → [`Decision`] JSON, for every processed notification.
const DECISIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("decisions");
/// `message_id` → [`Claim`] JSON: this replica's claims that the ledger has not ordered yet.
const CLAIMS: TableDefinition<&str, &[u8]> = TableDefinition::new("claims");
/// `message_id` → the replica whose claim came first in the ledger, for every claim read there.
const WINNERS: TableDefinition<&str, &str> = TableDefinition::new("winners");
/// Running totals; see [`Totals`].
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// This replica's identity, made once with the file.
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

const OFFERS_KEY: &str = "offers";
const NO_OFFERS_KEY: &str = "no_offers";
const DUPLICATES_KEY: &str = "duplicates";
const PENDING_KEY: &str = "pending";
/// The ledger offset to read next.
const LEDGER_KEY: &str = "ledger_next_offset";
const REPLICA_KEY: &str = "replica";

/// One step of a group transaction, applied in order.
pub(super) enum Step<'a> {
    /// Claim a notification, unless its `message_id` was processed before.
    Record {
        message_id: &'a str,
        notification: &'a Notification,
    },
    /// Apply a ledger entry: the first claim of each `message_id` wins.
    Apply(&'a Ordered),
}

/// What one [`Step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StepResult {
    Recorded(Outcome),
    Applied(Resolved),
}

/// The VIP offer database. Queries may run from any thread; writes go through
/// [`super::OfferWriter`].
#[derive(Debug)]
pub struct OfferDb {
    db: Database,
    path: PathBuf,
    /// This file's identity in the ledger.
    replica: String,
    committed_batches: AtomicU64,
}

impl OfferDb {
    /// Opens the database at `path`, creating the file and its tables if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OfferError> {
        let path = path.as_ref().to_path_buf();
        let db = Builder::new()
            .set_cache_size(CACHE_SIZE)
            .create(&path)
            .map_err(|source| OfferError::Open {
                path: path.clone(),
                source: Box::new(source),
            })?;
        let mut offer_db = Self {
            db,
            path,
            replica: String::new(),
            committed_batches: AtomicU64::new(0),
        };
        offer_db.replica = match offer_db.stored_replica()? {
            Some(replica) => replica,
            None => offer_db.create_tables()?,
        };
        Ok(offer_db)
    }

    /// This store's identity in the ledger: a replica is its store, not its process, so a
    /// restarted replica keeps its claims.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Where reading the ledger resumes: the offset after the last entry applied, if any was.
    pub fn ledger_next_offset(&self) -> Result<Option<u64>, OfferError> {
        let action = "read the ledger offset";
        let txn = self.db.begin_read().map_err(self.fail(action))?;
        let counters = txn.open_table(COUNTERS).map_err(self.fail(action))?;
        let offset = counters.get(LEDGER_KEY).map_err(self.fail(action))?;
        Ok(offset.map(|o| o.value()))
    }

    /// The `message_id`s of claims the ledger has not ordered yet, e.g. left by a crash
    /// between a claim's commit and its announcement.
    pub fn pending_claims(&self) -> Result<Vec<String>, OfferError> {
        let action = "read the pending claims";
        let txn = self.db.begin_read().map_err(self.fail(action))?;
        let claims = txn.open_table(CLAIMS).map_err(self.fail(action))?;
        let rows = claims.iter().map_err(self.fail(action))?;
        rows.map(|row| {
            let (message_id, _) = row.map_err(self.fail(action))?;
            Ok(message_id.value().to_owned())
        })
        .collect()
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
            pending: get(PENDING_KEY)?,
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

    /// Runs a group of steps in one durable transaction, in order, and returns what each did.
    /// A `message_id` decided or claimed before, in an earlier group or earlier in this one,
    /// is a duplicate. On error nothing of the group is recorded.
    pub(super) fn commit<'a>(
        &self,
        steps: impl IntoIterator<Item = Step<'a>>,
        rule: &OfferRule,
    ) -> Result<Vec<StepResult>, OfferError> {
        let action = "record notifications";
        let txn = self.db.begin_write().map_err(self.fail(action))?;
        let results = {
            let mut tables = Tables {
                offers: txn.open_table(OFFERS).map_err(self.fail(action))?,
                decisions: txn.open_table(DECISIONS).map_err(self.fail(action))?,
                claims: txn.open_table(CLAIMS).map_err(self.fail(action))?,
                winners: txn.open_table(WINNERS).map_err(self.fail(action))?,
                counters: txn.open_table(COUNTERS).map_err(self.fail(action))?,
            };
            let mut totals = Totals::load(&tables.counters).map_err(self.fail(action))?;
            let mut results = Vec::new();
            for step in steps {
                results.push(match step {
                    Step::Record {
                        message_id,
                        notification,
                    } => StepResult::Recorded(self.claim(
                        &mut tables,
                        &mut totals,
                        message_id,
                        notification,
                        rule,
                    )?),
                    Step::Apply(entry) => {
                        StepResult::Applied(self.apply(&mut tables, &mut totals, entry)?)
                    }
                });
            }
            totals
                .store(&mut tables.counters)
                .map_err(self.fail(action))?;
            results
        };
        txn.commit().map_err(self.fail(action))?;
        self.committed_batches.fetch_add(1, Ordering::Relaxed);
        Ok(results)
    }

    /// Claims `notification` for this replica, deciding by the rule, unless it was decided
    /// or claimed before.
    fn claim(
        &self,
        tables: &mut Tables<'_>,
        totals: &mut Totals,
        message_id: &str,
        notification: &Notification,
        rule: &OfferRule,
    ) -> Result<Outcome, OfferError> {
        let action = "claim a notification";
        if tables
            .claims
            .get(message_id)
            .map_err(self.fail(action))?
            .is_some()
        {
            // Claimed before but not yet ordered: announcing it again is what it needs.
            return Ok(Outcome::Claimed);
        }
        let decided = tables
            .decisions
            .get(message_id)
            .map_err(self.fail(action))?
            .is_some();
        if decided
            || tables
                .winners
                .get(message_id)
                .map_err(self.fail(action))?
                .is_some()
        {
            totals.duplicates += 1;
            return Ok(Outcome::Duplicate);
        }
        let offered = self.may_offer(&tables.offers, notification, rule)?;
        let claim = Claim {
            account_id: notification.account_id.clone(),
            offer_text: offered.then(|| rule.text.clone()),
            read_at: notification.read_at,
            claimed_at: Utc::now(),
        };
        let value = self.encode(action, &claim)?;
        tables
            .claims
            .insert(message_id, value.as_slice())
            .map_err(self.fail(action))?;
        totals.pending += 1;
        Ok(Outcome::Claimed)
    }

    /// Applies a ledger entry: each `message_id` it is the first to claim goes to its
    /// replica. This replica's claims become decisions (and offers) where it came first and
    /// are dropped where another replica did. Entries before the stored offset were applied
    /// already (a re-read after a reconnect) and change nothing.
    fn apply(
        &self,
        tables: &mut Tables<'_>,
        totals: &mut Totals,
        entry: &Ordered,
    ) -> Result<Resolved, OfferError> {
        let action = "apply a ledger entry";
        let mut resolved = Resolved::default();
        if entry.offset < totals.ledger_next_offset {
            return Ok(resolved);
        }
        totals.ledger_next_offset = entry.offset + 1;
        let mine = entry.replica == self.replica;
        for message_id in &entry.message_ids {
            let message_id = message_id.as_str();
            if tables
                .winners
                .get(message_id)
                .map_err(self.fail(action))?
                .is_some()
            {
                continue;
            }
            tables
                .winners
                .insert(message_id, entry.replica.as_str())
                .map_err(self.fail(action))?;
            let claim = tables
                .claims
                .remove(message_id)
                .map_err(self.fail(action))?;
            let Some(claim) = claim else {
                continue;
            };
            let claim: Claim = self.decode(action, claim.value())?;
            totals.pending = totals.pending.saturating_sub(1);
            if !mine {
                totals.duplicates += 1;
                resolved.lost += 1;
                continue;
            }
            let offered = claim.offer_text.is_some();
            if let Some(text) = claim.offer_text {
                let offer = Offer {
                    message_id: message_id.to_owned(),
                    account_id: claim.account_id.clone(),
                    text,
                    read_at: claim.read_at,
                    offered_at: claim.claimed_at,
                };
                let key = (claim.account_id.as_str(), totals.offers);
                let value = self.encode(action, &offer)?;
                tables
                    .offers
                    .insert(key, value.as_slice())
                    .map_err(self.fail(action))?;
                totals.offers += 1;
                resolved.offers += 1;
            } else {
                totals.no_offers += 1;
                resolved.no_offers += 1;
            }
            let decision = Decision {
                account_id: claim.account_id,
                offered,
                processed_at: claim.claimed_at,
            };
            let value = self.encode(action, &decision)?;
            tables
                .decisions
                .insert(message_id, value.as_slice())
                .map_err(self.fail(action))?;
        }
        Ok(resolved)
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

    /// The replica id of an existing file, `None` for a new one.
    fn stored_replica(&self) -> Result<Option<String>, OfferError> {
        let action = "read its replica id";
        let txn = self.db.begin_read().map_err(self.fail(action))?;
        let meta = match txn.open_table(META) {
            Ok(meta) => meta,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.fail(action)(e)),
        };
        let replica = meta.get(REPLICA_KEY).map_err(self.fail(action))?;
        Ok(replica.map(|r| r.value().to_owned()))
    }

    /// Creates the tables and this file's replica id, which it returns.
    fn create_tables(&self) -> Result<String, OfferError> {
        let action = "create its tables";
        let replica = uuid::Uuid::new_v4().to_string();
        let txn = self.db.begin_write().map_err(self.fail(action))?;
        txn.open_table(OFFERS).map_err(self.fail(action))?;
        txn.open_table(DECISIONS).map_err(self.fail(action))?;
        txn.open_table(CLAIMS).map_err(self.fail(action))?;
        txn.open_table(WINNERS).map_err(self.fail(action))?;
        txn.open_table(COUNTERS).map_err(self.fail(action))?;
        txn.open_table(META)
            .map_err(self.fail(action))?
            .insert(REPLICA_KEY, replica.as_str())
            .map_err(self.fail(action))?;
        txn.commit().map_err(self.fail(action))?;
        Ok(replica)
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

/// The tables a group transaction writes.
struct Tables<'txn> {
    offers: Table<'txn, (&'static str, u64), &'static [u8]>,
    decisions: Table<'txn, &'static str, &'static [u8]>,
    claims: Table<'txn, &'static str, &'static [u8]>,
    winners: Table<'txn, &'static str, &'static str>,
    counters: Table<'txn, &'static str, u64>,
}

/// The counters, read once per group and written back once.
struct Totals {
    offers: u64,
    no_offers: u64,
    duplicates: u64,
    pending: u64,
    ledger_next_offset: u64,
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
            pending: get(PENDING_KEY)?,
            ledger_next_offset: get(LEDGER_KEY)?,
        })
    }

    fn store(&self, counters: &mut Table<&str, u64>) -> Result<(), redb::StorageError> {
        counters.insert(OFFERS_KEY, self.offers)?;
        counters.insert(NO_OFFERS_KEY, self.no_offers)?;
        counters.insert(DUPLICATES_KEY, self.duplicates)?;
        counters.insert(PENDING_KEY, self.pending)?;
        counters.insert(LEDGER_KEY, self.ledger_next_offset)?;
        Ok(())
    }
}
