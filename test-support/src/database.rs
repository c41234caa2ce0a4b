//! Databases of one test's own: a SQLite file in a temporary folder, or a fresh database on
//! the test PostgreSQL server. Either is removed when the value is dropped, also when the test
//! failed.

use std::net::SocketAddr;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

/// The PostgreSQL server tests use: `PG_URL`, or user postgres on 127.0.0.1:5432 (trust auth,
/// as `scripts/ensure-postgres.sh` sets it up).
pub fn postgres_url() -> String {
    std::env::var("PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// How long dropping a PostgreSQL test database may take.
const DROP_TIMEOUT: Duration = Duration::from_secs(10);

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    kind: Kind,
}

enum Kind {
    /// Removes the SQLite files when dropped.
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    /// The database's name on the server.
    Postgres(String),
}

impl TestDatabase {
    /// A SQLite file in a folder of its own (the file itself is created by whoever opens the
    /// URL, with `mode=rwc`).
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder for the SQLite database");
        let url = format!("sqlite://{}/offers.db?mode=rwc", dir.path().display());
        Self {
            url,
            kind: Kind::Sqlite(dir),
        }
    }

    /// A new, empty database on the test PostgreSQL server.
    pub async fn postgres() -> Self {
        let name = format!("goblog_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&postgres_url())
            .await
            .expect("the test PostgreSQL answers at PG_URL (run scripts/ensure-postgres.sh)");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("a test database is created");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&postgres_url()).expect("PG_URL is a URL");
        url.set_path(&name);
        Self {
            url: url.into(),
            kind: Kind::Postgres(name),
        }
    }

    /// One of each backend, for a suite that must hold on both.
    pub async fn both() -> [Self; 2] {
        [Self::sqlite(), Self::postgres().await]
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `sqlite` or `postgres`, for assertion messages.
    pub fn backend(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite(_) => "sqlite",
            Kind::Postgres(_) => "postgres",
        }
    }

    /// This PostgreSQL database's URL through `address` (a [`crate::TcpProxy`] in front of
    /// the server), or `None` for SQLite.
    pub fn url_via(&self, address: SocketAddr) -> Option<String> {
        let Kind::Postgres(_) = self.kind else {
            return None;
        };
        let mut url = url::Url::parse(&self.url).ok()?;
        url.set_host(Some(&address.ip().to_string())).ok()?;
        url.set_port(Some(address.port())).ok()?;
        Some(url.into())
    }

    /// The server's address, for a [`crate::TcpProxy`] to forward to (`None` for SQLite).
    pub fn server_address(&self) -> Option<SocketAddr> {
        let Kind::Postgres(_) = self.kind else {
            return None;
        };
        let url = url::Url::parse(&self.url).ok()?;
        let host = url.host_str()?;
        let port = url.port().unwrap_or(5432);
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .ok()?
            .next()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Kind::Postgres(name) = &self.kind else {
            return; // the TempDir removes the SQLite files
        };
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        // Drop cannot await, and may run inside a runtime: its own thread and runtime, bounded.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let drop = async {
                    let mut admin = PgConnection::connect(&postgres_url()).await.ok()?;
                    admin.execute(sqlx::AssertSqlSafe(sql)).await.ok()?;
                    admin.close().await.ok()
                };
                tokio::time::timeout(DROP_TIMEOUT, drop).await.ok()?
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("test database {name} was not dropped");
        }
    }
}
