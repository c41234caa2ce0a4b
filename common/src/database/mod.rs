//! A service's own database through sqlx's `Any` driver: SQLite as the embedded default (one
//! file that every replica on a host opens), PostgreSQL where replicas run on several hosts.
//! One setting, the URL, selects it; the schema is the service's sqlx migrations, applied at
//! startup by every replica.
//!
//! One query text serves both backends (`INSERT .. ON CONFLICT`, `RETURNING`, BIGINT
//! microseconds for instants, `$N` placeholders) but for multi-row inserts, which
//! [`insert_rows`] writes with `?` on SQLite, whose named-parameter lookup is linear per
//! parameter.

mod error;
mod rows;
mod settings;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Connection, Executor, Row, Transaction};

pub use self::error::DatabaseError;
pub use self::rows::{insert_rows, placeholders};
pub use self::settings::{DatabaseRole, DatabaseSettings};
use crate::redact::redact_url;

/// How long a query waits for a free connection before the database counts as away.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest wait between two tries to reach the database at startup.
const CONNECT_RETRY_MAX: Duration = Duration::from_secs(5);

/// Per SQLite connection: WAL so that readers never block the writer and every replica's
/// process can share the file; `synchronous = FULL` so that a commit is on disk before what
/// it records is acknowledged; a busy timeout for the replicas' turns at the write lock; a
/// small page cache (the OS caches the file anyway); no checkpoint inside a commit (one would
/// hold up every request of its group): [`Database::keep_checkpointing`] runs them beside the
/// writer; and the log cut back to 4 MiB whenever it starts over, so that a burst's log does
/// not keep its disk space.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 5000; PRAGMA cache_size = -1024; PRAGMA wal_autocheckpoint = 0; \
     PRAGMA journal_size_limit = 4194304;";

/// How often [`Database::keep_checkpointing`] checkpoints. The log only starts over from its
/// beginning after a checkpoint that copied all of it, and a busy service writes about 10 MB
/// of it a second (1,000 VIP reads or notifications): checkpoints a second apart let it grow by
/// tens of MB, and fill a small disk on their own.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Which engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connected, migrated database. Share it in an `Arc`.
#[derive(Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// The URL, password redacted, for logs and errors.
    url: String,
}

impl Database {
    /// Connects (creating a SQLite file's folder) and applies `migrator`'s migrations. Fails
    /// at once if the database refuses; [`DatabaseError::is_unavailable`] tells whether trying
    /// again later may help.
    pub async fn connect<R: DatabaseRole>(
        settings: &DatabaseSettings<R>,
        migrator: &'static Migrator,
    ) -> Result<Self, DatabaseError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let url = settings.url_with_password()?;
        let redacted = redact_url(&url);
        let options = AnyConnectOptions::from_str(&url).map_err(|source| DatabaseError::Url {
            setting: R::SETTING,
            url: redacted.clone(),
            source,
        })?;
        if let Some(folder) = sqlite_folder(&url) {
            std::fs::create_dir_all(&folder).map_err(|source| DatabaseError::Folder {
                setting: R::SETTING,
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
            .after_release(|conn, _| Box::pin(still_usable(conn)))
            .connect_with(options)
            .await
            .map_err(|source| DatabaseError::Query {
                url: redacted.clone(),
                action: "connect",
                source,
            })?;
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let db = Self {
            pool,
            backend,
            url: redacted,
        };
        db.migrate(migrator).await?;
        Ok(db)
    }

    /// [`Database::connect`], trying again with backoff while the database is away (one that
    /// refuses, e.g. a wrong password, fails at once), as the broker connection does.
    pub async fn connect_when_available<R: DatabaseRole>(
        settings: &DatabaseSettings<R>,
        migrator: &'static Migrator,
    ) -> Result<Self, DatabaseError> {
        let backoff = ExponentialBuilder::default()
            .with_max_delay(CONNECT_RETRY_MAX)
            .with_jitter()
            .without_max_times();
        (|| Self::connect(settings, migrator))
            .retry(backoff)
            .when(DatabaseError::is_unavailable)
            .notify(|error, delay| {
                tracing::warn!(
                    error = %error.with_causes(),
                    retry_in = ?delay,
                    setting = R::SETTING,
                    "the database does not answer yet"
                );
            })
            .await
    }

    /// Applies the migrations not applied yet. PostgreSQL serialises replicas migrating at
    /// once with an advisory lock; two SQLite replicas can both see a migration as missing,
    /// the second then fails on the first's row, and a second run finds everything applied.
    async fn migrate(&self, migrator: &'static Migrator) -> Result<(), DatabaseError> {
        let mut result = migrator.run(&self.pool).await;
        if result.is_err() {
            result = migrator.run(&self.pool).await;
        }
        result.map_err(|source| DatabaseError::Migrate {
            url: self.url.clone(),
            source,
        })
    }

    /// The pool, for queries of the service's own.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database's URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Begins a transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, DatabaseError> {
        self.pool
            .begin()
            .await
            .map_err(self.fail("begin a transaction"))
    }

    /// Turns a failed query into an error naming the database and what it could not do.
    pub fn fail(&self, action: &'static str) -> impl FnOnce(sqlx::Error) -> DatabaseError + '_ {
        move |source| DatabaseError::Query {
            url: self.url.clone(),
            action,
            source,
        }
    }

    /// Checkpoints SQLite's write-ahead log every [`CHECKPOINT_EVERY`] until the pool is
    /// closed, saying once when it cannot (a full disk) and once when it can again; returns at
    /// once on PostgreSQL. Run it as a task beside the writer.
    pub async fn keep_checkpointing(&self) {
        if self.backend != Backend::Sqlite {
            return;
        }
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        while !self.pool.is_closed() {
            every.tick().await;
            match self.checkpoint().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(database = self.url, "the database checkpoints again");
                }
                Ok(()) => {}
                Err(_) if self.pool.is_closed() => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(error = %error.with_causes(), "cannot checkpoint the database");
                }
                Err(error) => {
                    tracing::debug!(error = %error.with_causes(), "still cannot checkpoint")
                }
            }
        }
    }

    /// Copies what SQLite's write-ahead log holds into the database file, without waiting for
    /// (or holding up) readers and writers.
    async fn checkpoint(&self) -> Result<(), DatabaseError> {
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&self.pool)
            .await
            .map_err(self.fail("checkpoint its write-ahead log"))?;
        let frames = |i| row.try_get::<i64, _>(i).unwrap_or_default();
        tracing::trace!(
            database = self.url,
            wal_frames = frames(1),
            copied = frames(2),
            "checkpointed the write-ahead log"
        );
        Ok(())
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), DatabaseError> {
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
}

/// Whether a connection handed back to the pool may serve again. One whose transaction could
/// not be ended is closed instead: on a full disk SQLite may roll a failed transaction back by
/// itself, sqlx's own `ROLLBACK` then fails and it counts the connection as still inside one,
/// so every later `BEGIN` there would open a savepoint in a transaction nobody ends, holding
/// the write lock ("database is locked") until the process stops. The ping first waits for the
/// rollback a dropped transaction queued.
async fn still_usable(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    conn.ping().await?;
    let usable = !conn.is_in_transaction();
    if !usable {
        tracing::debug!("closing a database connection left inside a transaction");
    }
    Ok(usable)
}

/// An instant as the databases store it: microseconds since the epoch.
pub fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The instant of [`micros`].
pub fn instant(micros: i64) -> DateTime<Utc> {
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
mod tests {
    use super::*;

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
