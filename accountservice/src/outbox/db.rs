//! [`OutboxDb`]: the outbox table, on a [`Database`] (SQLite or PostgreSQL).

use chrono::{DateTime, Utc};
use common::database::{Database, DatabaseError, instant, micros, placeholders};
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use super::OutboxEntry;
use crate::settings::OutboxDatabaseSettings;

/// Applied at startup by every replica (see [`Database::connect`]).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// The most ids one statement carries (SQLite takes at most 32,766 parameters).
const MAX_IDS: usize = 4096;

/// The outbox database. Share it in an `Arc`.
#[derive(Debug)]
pub struct OutboxDb {
    db: Database,
}

/// What one write transaction of the writer does.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    /// New entries, leased to `owner` until `leased_until` (0: due at once).
    pub appended: &'a [OutboxEntry],
    pub leased_until: i64,
    /// Entries the broker confirmed: gone.
    pub confirmed: &'a [String],
    /// Entries whose publish failed: due at once, for whichever relay gets to them.
    pub failed: &'a [String],
}

impl OutboxDb {
    /// Connects, waiting with backoff while the database is away, and applies the migrations.
    pub async fn connect_when_available(
        settings: &OutboxDatabaseSettings,
    ) -> Result<Self, DatabaseError> {
        Ok(Self {
            db: Database::connect_when_available(settings, &MIGRATOR).await?,
        })
    }

    /// Connects at once (or fails) and applies the migrations.
    pub async fn connect(settings: &OutboxDatabaseSettings) -> Result<Self, DatabaseError> {
        Ok(Self {
            db: Database::connect(settings, &MIGRATOR).await?,
        })
    }

    /// The database's URL, password redacted.
    pub fn url(&self) -> &str {
        self.db.url()
    }

    /// Applies `changes` atomically and durably: one commit, one fsync. Entries whose message
    /// id is there already are left as they are. Appends alone are one statement (no
    /// transaction around it); each kind of change is one statement of the group's exact
    /// size, not cached (a statement per size would crowd the cache): on SQLite, a statement
    /// is a round trip to its connection's thread, and those add up under load.
    pub async fn apply(
        &self,
        owner: &str,
        changes: &Changes<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), DatabaseError> {
        let settling = !changes.confirmed.is_empty() || !changes.failed.is_empty();
        if !settling {
            let mut conn = self
                .db
                .pool()
                .acquire()
                .await
                .map_err(self.db.fail("get a connection"))?;
            return self
                .append(&mut conn, owner, changes, now)
                .await
                .map_err(self.db.fail("append to the outbox"));
        }
        let mut tx = self.db.begin().await?;
        self.append(&mut tx, owner, changes, now)
            .await
            .map_err(self.db.fail("append to the outbox"))?;
        self.by_ids(&mut tx, "DELETE FROM outbox WHERE", changes.confirmed)
            .await
            .map_err(self.db.fail("remove confirmed entries from the outbox"))?;
        self.by_ids(
            &mut tx,
            "UPDATE outbox SET leased_until = 0 WHERE",
            changes.failed,
        )
        .await
        .map_err(self.db.fail("release unpublished entries in the outbox"))?;
        tx.commit()
            .await
            .map_err(self.db.fail("commit to the outbox"))?;
        Ok(())
    }

    async fn append(
        &self,
        conn: &mut AnyConnection,
        owner: &str,
        changes: &Changes<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        if changes.appended.is_empty() {
            return Ok(());
        }
        let (created_at, leased_until) = (micros(now), changes.leased_until);
        let sql = format!(
            "INSERT INTO outbox (message_id, body, created_at, owner, leased_until, trace_parent) \
             VALUES {} ON CONFLICT (message_id) DO NOTHING",
            placeholders(self.db.backend(), changes.appended.len(), 6)
        );
        let query = changes.appended.iter().fold(
            sqlx::query(AssertSqlSafe(sql)).persistent(false),
            |query, entry| {
                query
                    .bind(entry.message_id.as_str())
                    .bind(entry.body.as_str())
                    .bind(created_at)
                    .bind(owner)
                    .bind(leased_until)
                    .bind(entry.trace_parent.as_deref())
            },
        );
        query.execute(conn).await?;
        Ok(())
    }

    /// Runs `head message_id IN (..)` over `ids`, a statement per [`MAX_IDS`].
    async fn by_ids(
        &self,
        conn: &mut AnyConnection,
        head: &str,
        ids: &[String],
    ) -> Result<(), sqlx::Error> {
        for chunk in ids.chunks(MAX_IDS) {
            let list = placeholders(self.db.backend(), 1, chunk.len());
            let sql = format!("{head} message_id IN {list}");
            let query = chunk.iter().fold(
                sqlx::query(AssertSqlSafe(sql)).persistent(false),
                |query, id| query.bind(id.as_str()),
            );
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Leases up to `limit` due entries (lease passed, or released) to `owner` until
    /// `leased_until`, and returns them oldest first. A row two relays race for goes to one:
    /// the update re-checks its lease.
    pub async fn claim(
        &self,
        owner: &str,
        limit: u32,
        now: DateTime<Utc>,
        leased_until: DateTime<Utc>,
    ) -> Result<Vec<OutboxEntry>, DatabaseError> {
        let now = micros(now);
        let rows = sqlx::query(
            "UPDATE outbox SET owner = $1, leased_until = $2 \
             WHERE leased_until <= $3 AND message_id IN \
             (SELECT message_id FROM outbox WHERE leased_until <= $3 \
              ORDER BY created_at, message_id LIMIT $4) \
             RETURNING message_id, body, created_at, trace_parent",
        )
        .bind(owner)
        .bind(micros(leased_until))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await
        .map_err(self.db.fail("claim due entries of the outbox"))?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<i64, _>(2)?,
                    OutboxEntry {
                        message_id: row.try_get(0)?,
                        body: row.try_get(1)?,
                        trace_parent: row.try_get(3)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(self.db.fail("decode claimed outbox entries"))?;
        claimed.sort_by(|a, b| (a.0, &a.1.message_id).cmp(&(b.0, &b.1.message_id)));
        Ok(claimed.into_iter().map(|(_, entry)| entry).collect())
    }

    /// When the next entry falls due (its lease passes), if any is leased.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, DatabaseError> {
        let row = sqlx::query("SELECT MIN(leased_until) FROM outbox")
            .fetch_one(self.db.pool())
            .await
            .map_err(self.db.fail("find the outbox's next due entry"))?;
        let due: Option<i64> = row
            .try_get(0)
            .map_err(self.db.fail("decode the outbox's next due entry"))?;
        Ok(due.map(instant))
    }

    /// Makes every entry leased to `owner` due at once (for its shutdown).
    pub async fn release_owned(&self, owner: &str) -> Result<u64, DatabaseError> {
        let done = sqlx::query("UPDATE outbox SET leased_until = 0 WHERE owner = $1")
            .bind(owner)
            .execute(self.db.pool())
            .await
            .map_err(self.db.fail("release this replica's outbox entries"))?;
        Ok(done.rows_affected())
    }

    /// How many entries wait, and the creation time of the oldest.
    pub async fn depth(&self) -> Result<(u64, Option<DateTime<Utc>>), DatabaseError> {
        let row = sqlx::query("SELECT COUNT(*), MIN(created_at) FROM outbox")
            .fetch_one(self.db.pool())
            .await
            .map_err(self.db.fail("count the outbox"))?;
        let count: i64 = row.try_get(0).map_err(self.db.fail("decode the count"))?;
        let oldest: Option<i64> = row.try_get(1).map_err(self.db.fail("decode the count"))?;
        Ok((u64::try_from(count).unwrap_or(0), oldest.map(instant)))
    }

    /// A write that changes one row: whether the database takes writes (disk space, I/O).
    pub async fn probe(&self, now: DateTime<Utc>) -> Result<(), DatabaseError> {
        sqlx::query(
            "INSERT INTO outbox_probe (id, probed_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
        )
        .bind(micros(now))
        .execute(self.db.pool())
        .await
        .map_err(self.db.fail("write its probe row"))?;
        Ok(())
    }

    /// See [`Database::keep_checkpointing`].
    pub async fn keep_checkpointing(&self) {
        self.db.keep_checkpointing().await;
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.db.close().await;
    }
}
