//! Connecting to the store and bringing its schema up to date.

use std::time::Duration;

use ciq_migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

/// The embedded default: a SQLite file in the working directory, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://ciq.db?mode=rwc";

/// How long anything may wait for the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waits {
    /// Longest wait for a pool connection (connecting included).
    pub acquire: Duration,
    /// Longest a PostgreSQL statement may run (`statement_timeout`).
    pub statement: Duration,
}

/// Default longest wait for a pool connection.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1000);
/// Default longest PostgreSQL statement.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_millis(5000);

impl Default for Waits {
    fn default() -> Self {
        Self {
            acquire: DEFAULT_ACQUIRE_TIMEOUT,
            statement: DEFAULT_STATEMENT_TIMEOUT,
        }
    }
}

/// Connects to `url` (`sqlite://…` or `postgres://…`) with the default [`Waits`].
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, Waits::default()).await
}

/// Connects to `url` with the given bounds on waiting. SQLite runs in WAL mode with
/// foreign keys on and a busy timeout, so readers never block the single writer.
pub async fn connect_with(url: &str, waits: Waits) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url);
    opts.sqlx_logging(false)
        .connect_timeout(waits.acquire)
        .acquire_timeout(waits.acquire);
    if url.starts_with("sqlite:") {
        opts.max_connections(8).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    } else {
        let statement_ms = waits.statement.as_millis().to_string();
        opts.max_connections(32).map_sqlx_postgres_opts(move |o| {
            o.options([("statement_timeout", statement_ms.as_str())])
        });
    }
    Database::connect(opts).await
}

/// A pool on a read replica (`DATABASE_READ_URL`, PostgreSQL only): connected lazily,
/// so a replica that is down at start only means reads go to the primary, and waiting
/// for a connection is bounded by half a second at most (the primary is there).
pub async fn connect_replica(url: &str, waits: Waits) -> Result<DatabaseConnection, DbErr> {
    if !url.starts_with("postgres") {
        return Err(DbErr::Custom(
            "DATABASE_READ_URL must be a postgres:// URL (a streaming replica of DATABASE_URL)"
                .into(),
        ));
    }
    let wait = waits.acquire.min(Duration::from_millis(500));
    let statement_ms = waits.statement.as_millis().to_string();
    let mut opts = ConnectOptions::new(url);
    opts.sqlx_logging(false)
        .connect_timeout(wait)
        .acquire_timeout(wait)
        .connect_lazy(true)
        .max_connections(16)
        .map_sqlx_postgres_opts(move |o| o.options([("statement_timeout", statement_ms.as_str())]));
    Database::connect(opts).await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Connects and migrates.
pub async fn connect_and_migrate(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_and_migrate_with(url, Waits::default()).await
}

/// Connects with the given [`Waits`] and migrates.
pub async fn connect_and_migrate_with(
    url: &str,
    waits: Waits,
) -> Result<DatabaseConnection, DbErr> {
    let db = connect_with(url, waits).await?;
    migrate(&db).await?;
    Ok(db)
}
