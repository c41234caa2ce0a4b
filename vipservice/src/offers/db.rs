//! [`OfferDb`]: the offers database every replica shares, SQLite or PostgreSQL through sqlx's
//! `Any` driver, and the one transaction that records a group of notifications.
//!
//! One schema and one query text serve both backends (`INSERT .. ON CONFLICT`, `RETURNING`,
//! BIGINT microseconds for instants, `$N` placeholders), but for the placeholders of the
//! multi-row inserts: `?` on SQLite, whose named-parameter lookup is linear per parameter.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::notification::VipNotification as Notification;
use common::redact::redact_url;
use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, AssertSqlSafe, Executor, Row, Transaction};

use super::{Offer, OfferError, OfferRule, Outcome};
use crate::settings::DatabaseSettings;

/// Applied at startup by every replica; PostgreSQL serialises concurrent runs with an advisory
/// lock, SQLite by its write lock (see [`OfferDb::migrate`]).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// How long a query waits for a free connection before the database counts as away.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Per SQLite connection: WAL so that readers never block the writer and every replica's
/// process can share the file; `synchronous = FULL` so that a commit is on disk before its
/// messages are acked; a busy timeout for the replicas' turns at the write lock; a small page
/// cache (the OS caches the file anyway); no checkpoint inside a commit (one would hold up
/// every delivery of its group): [`OfferDb::checkpoint`] runs them beside the writer.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 5000; PRAGMA cache_size = -1024; PRAGMA wal_autocheckpoint = 0;";

/// One notification to record, under its `message_id`.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub message_id: &'a str,
    pub notification: &'a Notification,
}

/// The offers database. Clone-free: share it in an `Arc`.
#[derive(Debug)]
pub struct OfferDb {
    pool: AnyPool,
    placeholder: Placeholder,
    /// The URL, password redacted, for logs and errors.
    url: String,
}

impl OfferDb {
    /// Connects (creating a SQLite file's folder) and applies the migrations. Fails at once
    /// if the database refuses; [`OfferError::is_unavailable`] tells whether trying again
    /// later may help.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, OfferError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let url = settings.url_with_password()?;
        let redacted = redact_url(&url);
        let options = AnyConnectOptions::from_str(&url).map_err(|source| OfferError::Url {
            url: redacted.clone(),
            source,
        })?;
        if let Some(folder) = sqlite_folder(&url) {
            std::fs::create_dir_all(&folder).map_err(|source| OfferError::Folder {
                path: folder,
                source,
            })?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    if conn.backend_name() == "SQLite" {
                        conn.execute(SQLITE_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| OfferError::Query {
                url: redacted.clone(),
                action: "connect",
                source,
            })?;
        let placeholder = if url.starts_with("sqlite:") {
            Placeholder::Question
        } else {
            Placeholder::Numbered
        };
        let db = Self {
            pool,
            placeholder,
            url: redacted,
        };
        db.migrate().await?;
        Ok(db)
    }

    /// Applies the migrations not applied yet. Two SQLite replicas starting at once can both
    /// see a migration as missing; the second then fails on the first's row, and a second
    /// run finds everything applied.
    async fn migrate(&self) -> Result<(), OfferError> {
        let mut result = MIGRATOR.run(&self.pool).await;
        if result.is_err() {
            result = MIGRATOR.run(&self.pool).await;
        }
        result.map_err(|source| OfferError::Migrate {
            url: self.url.clone(),
            source,
        })
    }

    /// The database's URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
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
    ) -> Result<Vec<Outcome>, OfferError> {
        let mut outcomes = vec![Outcome::Duplicate; group.len()];
        let mut firsts: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, incoming) in group.iter().enumerate() {
            firsts.entry(incoming.message_id).or_insert(i);
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(self.fail("begin a transaction"))?;
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
        tx.commit().await.map_err(self.fail("commit the offers"))?;
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
    ) -> Result<HashSet<String>, OfferError> {
        let rows: Vec<(&str, i64)> = ids.map(|id| (id, micros(now))).collect();
        let returned = insert_rows(
            tx,
            self.placeholder,
            "INSERT INTO processed_messages (message_id, processed_at)",
            "ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
            2,
            &rows,
            |query, &(id, at)| query.bind(id).bind(at),
        )
        .await
        .map_err(self.fail("record the processed message ids"))?;
        returned
            .iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(self.fail("read the processed message ids back"))
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
    ) -> Result<Vec<usize>, OfferError> {
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
                self.placeholder,
                "INSERT INTO offer_accounts (account_id, last_offer_read_at)",
                "ON CONFLICT (account_id) DO UPDATE SET last_offer_read_at = \
                 CASE WHEN excluded.last_offer_read_at > offer_accounts.last_offer_read_at \
                 THEN excluded.last_offer_read_at ELSE offer_accounts.last_offer_read_at END",
                2,
                &rows,
                |query, &(account, at)| query.bind(account).bind(at),
            )
            .await
            .map_err(self.fail("update the accounts' latest offers"))?;
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
            .map_err(self.fail("apply the minimum interval between offers"))?;
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
    ) -> Result<(), OfferError> {
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
            self.placeholder,
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
        .map_err(self.fail("insert the offers"))?;
        Ok(())
    }

    /// The newest `limit` offers made to `account_id`, newest first.
    pub async fn offers_for(&self, account_id: &str, limit: u32) -> Result<Vec<Offer>, OfferError> {
        let rows = sqlx::query(
            "SELECT message_id, account_id, text, read_at, offered_at FROM offers \
             WHERE account_id = $1 ORDER BY offered_at DESC, message_id DESC LIMIT $2",
        )
        .bind(account_id.to_owned())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(self.fail("read an account's offers"))?;
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
            .map_err(self.fail("decode an account's offers"))
    }

    /// Forgets the message ids processed before `before`; returns how many. A redelivery of
    /// one of them later is processed again (see the README on the retention window).
    pub async fn prune_processed(&self, before: DateTime<Utc>) -> Result<u64, OfferError> {
        let done = sqlx::query("DELETE FROM processed_messages WHERE processed_at < $1")
            .bind(micros(before))
            .execute(&self.pool)
            .await
            .map_err(self.fail("prune the processed message ids"))?;
        Ok(done.rows_affected())
    }

    /// Copies what SQLite's write-ahead log holds into the database file, without waiting for
    /// (or holding up) readers and writers; nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<(), OfferError> {
        if self.placeholder == Placeholder::Question {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.pool)
                .await
                .map_err(self.fail("checkpoint its write-ahead log"))?;
        }
        Ok(())
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), OfferError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(self.fail("answer a ping"))?;
        Ok(())
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn fail(&self, action: &'static str) -> impl FnOnce(sqlx::Error) -> OfferError + '_ {
        move |source| OfferError::Query {
            url: self.url.clone(),
            action,
            source,
        }
    }
}

/// The most rows one multi-row statement carries.
const MAX_ROWS: usize = 256;

/// Runs `head VALUES (..), (..) tail` for `rows`, `bind` binding each row's `columns` values,
/// and returns what the statements returned. Rows go in chunks of a power of two (a group of
/// 200 is 128 + 64 + 8): each connection then caches at most nine prepared texts per
/// statement, whatever the group sizes, instead of one per size.
async fn insert_rows<'r, R>(
    tx: &mut Transaction<'static, Any>,
    placeholder: Placeholder,
    head: &str,
    tail: &str,
    columns: usize,
    rows: &'r [R],
    bind: impl Fn(Query<'r, Any, AnyArguments>, &'r R) -> Query<'r, Any, AnyArguments>,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut returned = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let size = 1 << rest.len().min(MAX_ROWS).ilog2();
        let (chunk, after) = rest.split_at(size);
        let sql = format!("{head} VALUES {} {tail}", placeholder.rows(size, columns));
        let query = chunk.iter().fold(sqlx::query(AssertSqlSafe(sql)), &bind);
        returned.extend(query.fetch_all(&mut **tx).await?);
        rest = after;
    }
    Ok(returned)
}

/// How a backend's parameters are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    /// `$1, $2, ..`: PostgreSQL's (sqlx's `QueryBuilder` writes `?` for the `Any` driver,
    /// which PostgreSQL rejects).
    Numbered,
    /// `?`: SQLite's positional parameters.
    Question,
}

impl Placeholder {
    /// `($1, $2), ($3, $4), ..` or `(?, ?), (?, ?), ..`: `rows` rows of `columns` parameters.
    fn rows(self, rows: usize, columns: usize) -> String {
        let mut sql = String::with_capacity(rows * columns * 6);
        for row in 0..rows {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for column in 0..columns {
                if column > 0 {
                    sql.push_str(", ");
                }
                match self {
                    Self::Numbered => {
                        sql.push('$');
                        sql.push_str(&(row * columns + column + 1).to_string());
                    }
                    Self::Question => sql.push('?'),
                }
            }
            sql.push(')');
        }
        sql
    }
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The folder of a SQLite URL's file (`sqlite://data/vipservice.db?mode=rwc` → `data`), if
/// it names one.
fn sqlite_folder(url: &str) -> Option<PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split(['?', '#']).next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Path::new(path)
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn placeholders_fill_rows_and_columns() {
        assert_eq!(Placeholder::Numbered.rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(Placeholder::Numbered.rows(1, 3), "($1, $2, $3)");
        assert_eq!(Placeholder::Question.rows(2, 2), "(?, ?), (?, ?)");
    }

    #[test]
    fn the_sqlite_folder_is_the_file_s_parent() {
        assert_eq!(
            sqlite_folder("sqlite://data/vipservice.db?mode=rwc"),
            Some(PathBuf::from("data"))
        );
        assert_eq!(
            sqlite_folder("sqlite:///var/lib/vip/offers.db"),
            Some(PathBuf::from("/var/lib/vip"))
        );
        assert_eq!(sqlite_folder("sqlite://offers.db"), None);
        assert_eq!(sqlite_folder("sqlite::memory:"), None);
        assert_eq!(sqlite_folder("postgres://u@h/db"), None);
    }
}
