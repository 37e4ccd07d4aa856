//! Connecting to the store and bringing its schema up to date.

use std::time::Duration;

use ciq_migrations::{Migrator, MigratorTrait};
use ciq_store::Db;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbErr, TransactionTrait};

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

/// How the gateway reaches PostgreSQL (`CIQ_DB_TRANSACTION_POOLING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// Directly, or through a pooler in session mode: statements as sqlx sends them,
    /// prepared once per connection and cached.
    #[default]
    Direct,
    /// Through PgBouncer in `pool_mode = transaction` (no reset query needed between
    /// clients): a statement outside a transaction is one simple query with its values
    /// inlined, a transaction starts with `DEALLOCATE ALL`, no statement cache, no startup
    /// parameters PgBouncer refuses (see [`ciq_store::db`]).
    Transaction,
}

/// How long a pooled connection may have been idle before it is pinged as it is handed
/// out. sea-orm's default pings on every checkout: a round trip (a `Sync` and its
/// `ReadyForQuery`) before every statement or transaction, besides the one sqlx makes as
/// the connection is given back (seen with strace, 2026-12-06). A connection in use
/// within the last second is trusted (as Go's pgxpool does); one idle longer, which a
/// server, a proxy or a firewall may have dropped meanwhile, is still checked first. A
/// trusted connection the server dropped fails one statement and is then discarded.
/// The same second as a kept connection is trusted for ([`ciq_store::kept`]).
pub const PING_AFTER_IDLE: Duration = ciq_store::kept::Kept::TRUSTED_FOR;

/// Connects to `url` (`sqlite://…` or `postgres://…`) with the default [`Waits`],
/// directly.
pub async fn connect(url: &str) -> Result<Db, DbErr> {
    connect_with(url, Waits::default(), Pooling::Direct).await
}

/// Connects to `url` with the given bounds on waiting. SQLite runs in WAL mode with
/// foreign keys on and a busy timeout, so readers never block the single writer.
pub async fn connect_with(url: &str, waits: Waits, pooling: Pooling) -> Result<Db, DbErr> {
    let mut opts = ConnectOptions::new(url);
    opts.sqlx_logging(false)
        .connect_timeout(waits.acquire)
        .acquire_timeout(waits.acquire)
        .test_before_acquire_if_idle_for(PING_AFTER_IDLE);
    if url.starts_with("sqlite:") {
        opts.max_connections(8).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
        return Ok(Db::direct(Database::connect(opts).await?));
    }
    opts.max_connections(32);
    postgres_options(&mut opts, waits, pooling);
    connected(Database::connect(opts).await?, pooling).await
}

/// PostgreSQL's connection options for `pooling`. Directly, the statement timeout is a
/// startup parameter; PgBouncer refuses startup parameters it does not know (`options`,
/// `extra_float_digits`), so through it the timeout must be the role's or the
/// database's (`ALTER ROLE … SET statement_timeout`), and the statement cache is off.
fn postgres_options(opts: &mut ConnectOptions, waits: Waits, pooling: Pooling) {
    let statement_ms = waits.statement.as_millis().to_string();
    opts.map_sqlx_postgres_opts(move |o| match pooling {
        Pooling::Direct => o.options([("statement_timeout", statement_ms.as_str())]),
        Pooling::Transaction => o.statement_cache_capacity(0).extra_float_digits(None),
    });
}

/// The handle on `conn` for `pooling`; through a transaction pooler, a warning when the
/// server would let a statement run for ever.
async fn connected(conn: sea_orm::DatabaseConnection, pooling: Pooling) -> Result<Db, DbErr> {
    match pooling {
        Pooling::Direct => Ok(Db::direct(conn)),
        Pooling::Transaction => {
            let db = Db::transaction_pooled(conn);
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT current_setting('statement_timeout') AS timeout",
                ))
                .await?;
            let timeout = row
                .and_then(|r| r.try_get::<String>("", "timeout").ok())
                .unwrap_or_default();
            if timeout == "0" {
                tracing::warn!(
                    "statement_timeout is 0 behind the transaction pooler: set it on the role or database (ALTER ROLE ... SET statement_timeout = '5s')"
                );
            }
            Ok(db)
        }
    }
}

/// A pool on a read replica (`DATABASE_READ_URL`, PostgreSQL only): connected lazily,
/// so a replica that is down at start only means reads go to the primary, and waiting
/// for a connection is bounded by half a second at most (the primary is there).
pub async fn connect_replica(url: &str, waits: Waits, pooling: Pooling) -> Result<Db, DbErr> {
    if !url.starts_with("postgres") {
        return Err(DbErr::Custom(
            "DATABASE_READ_URL must be a postgres:// URL (a streaming replica of DATABASE_URL)"
                .into(),
        ));
    }
    let wait = waits.acquire.min(Duration::from_millis(500));
    lazy_pool(url, wait, 16, waits, pooling).await
}

/// A PostgreSQL pool of at most `max` connections that connects on first use, each
/// wait for a connection bounded by `wait`.
async fn lazy_pool(
    url: &str,
    wait: Duration,
    max: u32,
    waits: Waits,
    pooling: Pooling,
) -> Result<Db, DbErr> {
    let mut opts = ConnectOptions::new(url);
    opts.sqlx_logging(false)
        .connect_timeout(wait)
        .acquire_timeout(wait)
        .test_before_acquire_if_idle_for(PING_AFTER_IDLE)
        .connect_lazy(true)
        .max_connections(max);
    postgres_options(&mut opts, waits, pooling);
    let conn = Database::connect(opts).await?;
    Ok(match pooling {
        Pooling::Direct => Db::direct(conn),
        Pooling::Transaction => Db::transaction_pooled(conn),
    })
}

/// A PostgreSQL pool on `url` that connects on first use (the store may be down
/// now): how an instance that starts during an outage holds its store until it answers.
pub async fn connect_lazily(url: &str, waits: Waits, pooling: Pooling) -> Result<Db, DbErr> {
    lazy_pool(url, waits.acquire, 32, waits, pooling).await
}

/// Whether `err`, met while connecting at start, says the store is not there (nothing
/// listens, the connection broke, no connection in time) rather than that it refused
/// us (a wrong password, a missing database), which no wait will mend.
pub fn unreachable_at_start(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => ciq_store::is_sqlx_outage(e),
        _ => false,
    }
}

/// Applies every pending migration (through a transaction pooler, all in one
/// transaction: every statement reaches one server connection).
pub async fn migrate(db: &Db) -> Result<(), DbErr> {
    if db.is_transaction_pooled() {
        let txn = db.begin().await?;
        Migrator::up(&txn, None).await?;
        txn.commit().await
    } else {
        Migrator::up(db.connection(), None).await
    }
}

/// Connects directly and migrates.
pub async fn connect_and_migrate(url: &str) -> Result<Db, DbErr> {
    connect_and_migrate_with(url, Waits::default(), Pooling::Direct).await
}

/// Connects with the given [`Waits`] and [`Pooling`] and migrates.
pub async fn connect_and_migrate_with(
    url: &str,
    waits: Waits,
    pooling: Pooling,
) -> Result<Db, DbErr> {
    let db = connect_with(url, waits, pooling).await?;
    migrate(&db).await?;
    Ok(db)
}
