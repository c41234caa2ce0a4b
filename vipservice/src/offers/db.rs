//! [`OfferDb`]: the offers database every replica shares (a [`Database`]: SQLite or
//! PostgreSQL), and the one transaction that records a group of notifications.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use common::database::{Database, DatabaseError, insert_rows, instant, micros};
use common::notification::VipNotification as Notification;
use sqlx::{Any, Row, Transaction};

use super::{Offer, OfferRule, Outcome};
use crate::settings::OffersDatabaseSettings;

/// Applied at startup by every replica (see [`Database::connect`]).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// One notification to record, under its `message_id`.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub message_id: &'a str,
    pub notification: &'a Notification,
}

/// The offers database. Clone-free: share it in an `Arc`.
#[derive(Debug)]
pub struct OfferDb {
    db: Database,
}

impl OfferDb {
    /// Connects (creating a SQLite file's folder) and applies the migrations. Fails at once
    /// if the database refuses; [`DatabaseError::is_unavailable`] tells whether trying again
    /// later may help.
    pub async fn connect(settings: &OffersDatabaseSettings) -> Result<Self, DatabaseError> {
        Ok(Self {
            db: Database::connect(settings, &MIGRATOR).await?,
        })
    }

    /// [`OfferDb::connect`], waiting with backoff while the database is away.
    pub async fn connect_when_available(
        settings: &OffersDatabaseSettings,
    ) -> Result<Self, DatabaseError> {
        Ok(Self {
            db: Database::connect_when_available(settings, &MIGRATOR).await?,
        })
    }

    /// The database's URL, password redacted.
    pub fn url(&self) -> &str {
        self.db.url()
    }

    /// Records `group` in one transaction and says what it did for each, in order: the first
    /// occurrence of a `message_id` never seen before is processed under `rule`; any other is
    /// a duplicate. Nothing is recorded if it fails.
    ///
    /// Every replica takes its locks in one order (message ids, then account ids, sorted), so
    /// their transactions never deadlock on PostgreSQL.
    pub async fn record(
        &self,
        group: &[Incoming<'_>],
        rule: &OfferRule,
        now: DateTime<Utc>,
    ) -> Result<Vec<Outcome>, DatabaseError> {
        let mut outcomes = vec![Outcome::Duplicate; group.len()];
        let mut firsts: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, incoming) in group.iter().enumerate() {
            firsts.entry(incoming.message_id).or_insert(i);
        }
        let mut tx = self.db.begin().await?;
        let fresh = self.remember(&mut tx, firsts.keys().copied(), now).await?;
        let mut candidates: Vec<usize> = firsts
            .values()
            .copied()
            .filter(|&i| fresh.contains(group[i].message_id))
            .collect();
        // Per account, in `readAt` order: that is the order the minimum interval counts in.
        candidates.sort_by_key(|&i| {
            let n = group[i].notification;
            (n.account_id.as_str(), n.read_at, group[i].message_id)
        });
        let offered = self.decide(&mut tx, group, &candidates, rule).await?;
        self.insert_offers(&mut tx, group, &offered, rule, now)
            .await?;
        tx.commit()
            .await
            .map_err(self.db.fail("commit the offers"))?;
        let offered: HashSet<usize> = offered.into_iter().collect();
        for i in candidates {
            outcomes[i] = if offered.contains(&i) {
                Outcome::Offered
            } else {
                Outcome::NotOffered
            };
        }
        Ok(outcomes)
    }

    /// Inserts the ids into the inbox; returns those that were not there.
    async fn remember(
        &self,
        tx: &mut Transaction<'static, Any>,
        ids: impl Iterator<Item = &str>,
        now: DateTime<Utc>,
    ) -> Result<HashSet<String>, DatabaseError> {
        let rows: Vec<(&str, i64)> = ids.map(|id| (id, micros(now))).collect();
        let returned = insert_rows(
            tx,
            self.db.backend(),
            "INSERT INTO processed_messages (message_id, processed_at)",
            "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
            2,
            &rows,
            |query, &(id, at)| query.bind(id).bind(at),
        )
        .await
        .map_err(self.db.fail("record the processed message ids"))?;
        returned
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(self.db.fail("read the processed message ids back"))
    }

    /// Which `candidates` (indexes into `group`, sorted by account and `readAt`) become
    /// offers. With no minimum interval, all of them, and each account's row only moves to
    /// its latest offer. With one, each offer is a conditional update of the account's row,
    /// which locks it: two replicas racing on one account cannot both offer inside the
    /// interval.
    async fn decide(
        &self,
        tx: &mut Transaction<'static, Any>,
        group: &[Incoming<'_>],
        candidates: &[usize],
        rule: &OfferRule,
    ) -> Result<Vec<usize>, DatabaseError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let interval = i64::try_from(rule.min_interval.as_micros()).unwrap_or(i64::MAX);
        if interval == 0 {
            let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
            for &i in candidates {
                let n = group[i].notification;
                let at = micros(n.read_at);
                latest
                    .entry(&n.account_id)
                    .and_modify(|l| *l = (*l).max(at))
                    .or_insert(at);
            }
            let rows: Vec<(&str, i64)> = latest.into_iter().collect();
            insert_rows(
                tx,
                self.db.backend(),
                "INSERT INTO offer_accounts (account_id, last_offer_read_at)",
                "ON CONFLICT (account_id) DO UPDATE SET last_offer_read_at = \
                 CASE WHEN excluded.last_offer_read_at > offer_accounts.last_offer_read_at \
                 THEN excluded.last_offer_read_at ELSE offer_accounts.last_offer_read_at END",
                2,
                &rows,
                |query, &(account, at)| query.bind(account).bind(at),
            )
            .await
            .map_err(self.db.fail("update the accounts' latest offers"))?;
            return Ok(candidates.to_vec());
        }
        let mut offered = Vec::new();
        for &i in candidates {
            let n = group[i].notification;
            let won = sqlx::query(
                "INSERT INTO offer_accounts (account_id, last_offer_read_at) VALUES ($1, $2) \
                 ON CONFLICT (account_id) DO UPDATE SET last_offer_read_at = \
                 excluded.last_offer_read_at \
                 WHERE excluded.last_offer_read_at >= offer_accounts.last_offer_read_at + $3 \
                 RETURNING account_id",
            )
            .bind(n.account_id.clone())
            .bind(micros(n.read_at))
            .bind(interval)
            .fetch_optional(&mut **tx)
            .await
            .map_err(self.db.fail("apply the minimum interval between offers"))?;
            if won.is_some() {
                offered.push(i);
            }
        }
        Ok(offered)
    }

    async fn insert_offers(
        &self,
        tx: &mut Transaction<'static, Any>,
        group: &[Incoming<'_>],
        offered: &[usize],
        rule: &OfferRule,
        now: DateTime<Utc>,
    ) -> Result<(), DatabaseError> {
        if offered.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&str, &str, i64)> = offered
            .iter()
            .map(|&i| {
                let Incoming {
                    message_id,
                    notification,
                } = group[i];
                let account = notification.account_id.as_str();
                (message_id, account, micros(notification.read_at))
            })
            .collect();
        let (text, offered_at) = (rule.text.as_str(), micros(now));
        insert_rows(
            tx,
            self.db.backend(),
            "INSERT INTO offers (message_id, account_id, text, read_at, offered_at)",
            "ON CONFLICT (message_id) DO NOTHING",
            5,
            &rows,
            |query, &(id, account, read_at)| {
                query
                    .bind(id)
                    .bind(account)
                    .bind(text)
                    .bind(read_at)
                    .bind(offered_at)
            },
        )
        .await
        .map_err(self.db.fail("insert the offers"))?;
        Ok(())
    }

    /// The newest `limit` offers made to `account_id`, newest first.
    pub async fn offers_for(
        &self,
        account_id: &str,
        limit: u32,
    ) -> Result<Vec<Offer>, DatabaseError> {
        let rows = sqlx::query(
            "SELECT message_id, account_id, text, read_at, offered_at FROM offers \
             WHERE account_id = $1 ORDER BY offered_at DESC, message_id DESC LIMIT $2",
        )
        .bind(account_id.to_owned())
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await
        .map_err(self.db.fail("read an account's offers"))?;
        rows.iter()
            .map(|row| {
                Ok(Offer {
                    message_id: row.try_get(0)?,
                    account_id: row.try_get(1)?,
                    text: row.try_get(2)?,
                    read_at: instant(row.try_get(3)?),
                    offered_at: instant(row.try_get(4)?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(self.db.fail("decode an account's offers"))
    }

    /// Forgets the message ids processed before `before`; returns how many. A redelivery of
    /// one of them later is processed again (see the README on the retention window).
    pub async fn prune_processed(&self, before: DateTime<Utc>) -> Result<u64, DatabaseError> {
        let done = sqlx::query("DELETE FROM processed_messages WHERE processed_at < $1")
            .bind(micros(before))
            .execute(self.db.pool())
            .await
            .map_err(self.db.fail("prune the processed message ids"))?;
        Ok(done.rows_affected())
    }

    /// See [`Database::keep_checkpointing`].
    pub async fn keep_checkpointing(&self) {
        self.db.keep_checkpointing().await;
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DatabaseError> {
        self.db.ping().await
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.db.close().await;
    }
}
