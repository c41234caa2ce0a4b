//! Errors of a service's database.

use std::path::PathBuf;

/// Why the database could not do what was asked. Each variant names the setting to check or
/// the database by its URL, password redacted.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("database URL {url} (setting `{setting}.database_url`) is invalid")]
    Url {
        setting: &'static str,
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "cannot read the database password from {path} (setting `{setting}.database_password_file`)"
    )]
    PasswordFile {
        setting: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the folder {path} of the database (setting `{setting}.database_url`)")]
    Folder {
        setting: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot apply the migrations to database {url}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("database {url}: cannot {action}")]
    Query {
        url: String,
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl DatabaseError {
    /// The error and its causes on one line, for logs and `/health`.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    /// Whether the database is away (unreachable, restarting, out of connections, out of
    /// space) rather than refusing this particular request: what failed then may well work
    /// once the database is back, so it is waited for, not given up on.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Query { source, .. } => is_unavailable(source),
            Self::Migrate {
                source: sqlx::migrate::MigrateError::Execute(source),
                ..
            } => is_unavailable(source),
            _ => false,
        }
    }
}

/// Connection-level failures and the database codes that mean "not now": PostgreSQL's
/// connection exceptions (08), insufficient resources (53: disk full, out of memory, too many
/// connections), operator intervention (57: admin shutdown, cannot connect now), serialization
/// failure and deadlock (40001, 40P01); SQLite's busy, locked, I/O error and full disk (5, 6,
/// 10, 13, extended codes included).
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse::<i32>()
                    .is_ok_and(|code| matches!(code & 0xff, 5 | 6 | 10 | 13))
            } else {
                ["08", "53", "57"]
                    .iter()
                    .any(|class| code.starts_with(class))
                    || code == "40001"
                    || code == "40P01"
            }
        }
        _ => false,
    }
}
