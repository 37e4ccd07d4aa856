//! The gateway's handle on its database, safe behind a transaction-pooling proxy.
//!
//! PgBouncer in `pool_mode = transaction` (1.18, Debian's, and any version without
//! `max_prepared_statements`) gives a client a server connection for one transaction at
//! a time. sqlx prepares every statement (Parse, then Sync, then Bind/Execute in a second
//! round trip), so a statement outside a transaction may be prepared on one server and
//! executed on another ("prepared statement sqlx_s_1 does not exist"), and a statement
//! name one client leaves behind collides with another client's.
//!
//! [`Db::transaction_pooled`] makes every statement safe there without a reset query
//! between clients (`server_reset_query_always` may stay 0):
//! - a statement outside a transaction names nothing: it goes as one simple-protocol query
//!   with its values as typed literals ([`crate::inline`]; one round trip), or, when a
//!   value has no literal form, unnamed (`persistent(false)`) in a transaction of its own;
//! - a transaction (sea-orm's, which names its statements) starts with `DEALLOCATE ALL`,
//!   so what an earlier client left on that server connection cannot collide with it;
//!   sqlx's statement cache is off, so nothing is expected to outlive the transaction.
//!
//! [`Db::direct`] is sea-orm's connection as it is, at no cost.
//!
//! Either way, on PostgreSQL a statement outside a transaction runs on one of a few
//! connections the [`Db`] keeps between statements ([`crate::kept`]), so it costs one
//! round trip and not two (sqlx pings every connection given back to its pool).
use std::pin::Pin;

use std::sync::Arc;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, RuntimeErr, Statement, TransactionError,
    TransactionOptions, TransactionTrait,
};
use sqlx::postgres::{PgQueryResult, PgRow};

use crate::kept::Kept;

/// sea-orm's connection, and whether it goes through a transaction-pooling proxy (see
/// the module docs). Cheap to clone. Implements [`ConnectionTrait`], so entities and
/// queries run on it as on sea-orm's own connection.
#[derive(Clone, Debug)]
pub struct Db {
    inner: DatabaseConnection,
    transaction_pooled: bool,
    kept: Arc<Kept>,
    /// The functions [`Db::fetch_rows_of`] made or could not make.
    functions: Arc<crate::planned::Made>,
}

/// Runs `$statement` prepared (`$method`: `fetch_all`, `fetch_optional`, `execute`) on a
/// kept connection, kept again only when it succeeded (see [`crate::kept`]).
macro_rules! kept {
    ($db:expr, $statement:expr, $method:ident) => {{
        let pool = $db.inner.get_postgres_connection_pool();
        let mut taken = $db.kept.take(pool).await?;
        let result = prepared($statement).$method(taken.conn()).await?;
        taken.keep();
        Ok(result)
    }};
}

impl Db {
    /// Statements run as sea-orm runs them (PostgreSQL directly or through PgBouncer in
    /// session mode, SQLite).
    pub fn direct(inner: DatabaseConnection) -> Self {
        Self {
            kept: Arc::new(kept_for(&inner)),
            inner,
            transaction_pooled: false,
            functions: Arc::default(),
        }
    }

    /// No statement outside a transaction is named and every transaction starts by
    /// dropping what an earlier client named (the connection's pool must keep no
    /// prepared statements: sqlx's statement cache at 0); see the module docs.
    pub fn transaction_pooled(inner: DatabaseConnection) -> Self {
        Self {
            kept: Arc::new(kept_for(&inner)),
            inner,
            transaction_pooled: true,
            functions: Arc::default(),
        }
    }

    fn is_postgres(&self) -> bool {
        self.inner.get_database_backend() == DbBackend::Postgres
    }

    /// Whether statements are wrapped for a transaction-pooling proxy.
    pub fn is_transaction_pooled(&self) -> bool {
        self.transaction_pooled
    }

    /// sea-orm's connection itself, for what is not a statement (the pool's size, the
    /// sqlx pool of group commit, closing). Statements sent on it directly are not
    /// wrapped: use the [`Db`] for those.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.inner
    }

    /// Whether the database answers (a ping needs no prepared statement).
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.inner.ping().await
    }

    /// Closes the pool: gives back the kept connections, then waits for every
    /// connection to come back.
    pub async fn close(&self) -> Result<(), DbErr> {
        self.kept.release_all();
        self.inner.close_by_ref().await
    }

    /// How many connections are kept between statements now (idle, though checked out
    /// of the pool; see [`crate::kept`]).
    pub fn kept_idle(&self) -> usize {
        self.kept.len()
    }

    /// The rows `statement` selects, on PostgreSQL, on a kept connection (one round
    /// trip; see [`crate::kept`]): for a caller that decodes sqlx's rows itself. Through
    /// a transaction pooler it names nothing ([`Db::fetch_pooled`]).
    pub async fn fetch_all(&self, statement: Statement) -> Result<Vec<PgRow>, sqlx::Error> {
        if self.transaction_pooled {
            return self.fetch_pooled(statement).await;
        }
        kept!(self, statement, fetch_all)
    }

    /// [`Db::fetch_all`] for a `SELECT` of whole rows of `table` whose plan need not
    /// follow its values. Behind a transaction pooler it runs as a call of a PL/pgSQL
    /// function made once per statement text ([`crate::planned`]), whose plan every
    /// server connection keeps, instead of a statement planned at every call; as the
    /// statement itself when it has no such function, the role may not make one, this
    /// process has made its most ([`crate::planned`]'s bound), or the function was
    /// dropped since it was made (made again at the next call).
    pub async fn fetch_rows_of(
        &self,
        table: &str,
        statement: Statement,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        if !self.transaction_pooled {
            return self.fetch_all(statement).await;
        }
        let call = self
            .functions
            .known_or_made::<sqlx::Error, _>(&statement.sql, || async {
                let Some(function) = crate::planned::rows_function(table, &statement) else {
                    return Ok(None);
                };
                let pool = self.inner.get_postgres_connection_pool();
                let mut taken = self.kept.take(pool).await?;
                let made = crate::planned::make_function(
                    taken.conn(),
                    &function.create,
                    &format!("{table} rows"),
                )
                .await?;
                if made {
                    // A refusal is a failed statement: its connection goes back through
                    // the pool's check (see `crate::kept`).
                    taken.keep();
                }
                Ok(made.then_some(function.call.sql))
            })
            .await?;
        let Some(call) = call else {
            return self.fetch_pooled(statement).await;
        };
        let calling = Statement {
            sql: call,
            values: statement.values.clone(),
            db_backend: statement.db_backend,
        };
        match self.fetch_pooled(calling).await {
            Err(err) if crate::planned::undefined_function(&err) => {
                self.functions.forget(&statement.sql);
                self.fetch_pooled(statement).await
            }
            other => other,
        }
    }

    async fn fetch_optional(&self, statement: Statement) -> Result<Option<PgRow>, sqlx::Error> {
        kept!(self, statement, fetch_optional)
    }

    async fn execute_kept(&self, statement: Statement) -> Result<PgQueryResult, sqlx::Error> {
        kept!(self, statement, execute)
    }
}

/// The stash of kept connections for `inner`'s pool (none for SQLite).
fn kept_for(inner: &DatabaseConnection) -> Kept {
    match inner.get_database_backend() {
        DbBackend::Postgres => Kept::for_pool(
            inner
                .get_postgres_connection_pool()
                .options()
                .get_max_connections(),
        ),
        _ => Kept::for_pool(0),
    }
}

/// `statement` as sqlx's prepared (and cached) statement, its values bound by sea-orm's
/// own binder (so every parameter type sea-orm sends works).
fn prepared(
    statement: Statement,
) -> sqlx::query::Query<'static, sqlx::Postgres, sea_query_sqlx::SqlxValues> {
    let values =
        sea_query_sqlx::SqlxValues(statement.values.unwrap_or(sea_orm::Values(Vec::new())));
    sqlx::query_with(sqlx::AssertSqlSafe(statement.sql), values)
}

/// A sqlx error met while taking a connection, as sea-orm reports one (a pool that
/// gave none in time is `ConnectionAcquire`), else as a failed query.
fn taken_error(err: sqlx::Error, otherwise: fn(sqlx::Error) -> DbErr) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => {
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed)
        }
        err => otherwise(err),
    }
}

/// Runs `$statement` through a transaction pooler naming nothing (see the module docs):
/// `sqlx::raw_sql(..).$method(pool)` with its values inlined, or else
/// `sqlx::query_with(..).persistent(false).$method(..)` in a transaction of its own.
/// On a kept connection (see [`crate::kept`]), kept again only when it all succeeded.
macro_rules! pooled {
    ($db:expr, $statement:expr, $method:ident) => {{
        let statement: Statement = $statement;
        let pool = $db.inner.get_postgres_connection_pool();
        let mut taken = $db.kept.take(pool).await?;
        let result = match crate::inline::inline(&statement) {
            Some(sql) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .$method(taken.conn())
                    .await
            }
            None => {
                let query = prepared(statement).persistent(false);
                async {
                    let mut txn = sqlx::Connection::begin(taken.conn()).await?;
                    let result = query.$method(&mut *txn).await?;
                    txn.commit().await?;
                    Ok(result)
                }
                .await
            }
        };
        if result.is_ok() {
            taken.keep();
        }
        result
    }};
}

impl Db {
    /// The rows `statement` selects, on a transaction-pooled PostgreSQL connection,
    /// naming nothing on the server (see the module docs): for a caller that decodes
    /// sqlx's rows itself. The rows are in text format when the values were inlined.
    pub async fn fetch_pooled(&self, statement: Statement) -> Result<Vec<PgRow>, sqlx::Error> {
        pooled!(self, statement, fetch_all)
    }

    async fn fetch_optional_pooled(
        &self,
        statement: Statement,
    ) -> Result<Option<PgRow>, sqlx::Error> {
        pooled!(self, statement, fetch_optional)
    }

    async fn execute_pooled(&self, statement: Statement) -> Result<PgQueryResult, sqlx::Error> {
        pooled!(self, statement, execute)
    }

    /// A transaction that starts with `DEALLOCATE ALL` behind a transaction pooler.
    async fn begun(&self, txn: DatabaseTransaction) -> Result<DatabaseTransaction, DbErr> {
        if self.transaction_pooled {
            txn.execute_unprepared("DEALLOCATE ALL").await?;
        }
        Ok(txn)
    }

    /// Runs `callback` in `txn` (begun by [`Db::begun`]), committed when it succeeds and
    /// rolled back when it fails, as sea-orm's own `transaction` does.
    async fn run<F, T, E>(
        &self,
        txn: Result<DatabaseTransaction, DbErr>,
        callback: F,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        let txn = self
            .begun(txn.map_err(TransactionError::Connection)?)
            .await
            .map_err(TransactionError::Connection)?;
        match callback(&txn).await {
            Ok(value) => {
                txn.commit().await.map_err(TransactionError::Connection)?;
                Ok(value)
            }
            Err(err) => {
                txn.rollback().await.map_err(TransactionError::Connection)?;
                Err(TransactionError::Transaction(err))
            }
        }
    }
}

/// A sqlx error as sea-orm reports a failed query (so [`crate::is_outage`] reads it the
/// same), for callers that run sqlx themselves.
pub fn query_error(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

/// A sqlx error as sea-orm reports a failed execution.
fn exec_error(err: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        if self.transaction_pooled {
            self.execute_pooled(stmt)
                .await
                .map(ExecResult::from)
                .map_err(|e| taken_error(e, exec_error))
        } else if self.is_postgres() {
            self.execute_kept(stmt)
                .await
                .map(ExecResult::from)
                .map_err(|e| taken_error(e, exec_error))
        } else {
            self.inner.execute_raw(stmt).await
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        // The simple protocol: one round trip, nothing prepared, safe either way.
        self.inner.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let row = if self.transaction_pooled {
            self.fetch_optional_pooled(stmt).await
        } else if self.is_postgres() {
            self.fetch_optional(stmt).await
        } else {
            return self.inner.query_one_raw(stmt).await;
        };
        row.map(|row| row.map(QueryResult::from))
            .map_err(|e| taken_error(e, query_error))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        if self.is_postgres() {
            self.fetch_all(stmt)
                .await
                .map(|rows| rows.into_iter().map(QueryResult::from).collect())
                .map_err(|e| taken_error(e, query_error))
        } else {
            self.inner.query_all_raw(stmt).await
        }
    }
}

/// Transactions as sea-orm's connection makes them (every statement of one reaches the
/// same server connection, through a transaction-pooling proxy too), each starting with
/// `DEALLOCATE ALL` behind such a proxy.
#[async_trait::async_trait]
impl TransactionTrait for Db {
    type Transaction = DatabaseTransaction;

    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.begun(self.inner.begin().await?).await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.begun(
            self.inner
                .begin_with_config(isolation_level, access_mode)
                .await?,
        )
        .await
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.begun(self.inner.begin_with_options(options).await?)
            .await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.transaction_with_config(callback, None, None).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        if !self.transaction_pooled {
            return self
                .inner
                .transaction_with_config(callback, isolation_level, access_mode)
                .await;
        }
        let txn = self
            .inner
            .begin_with_config(isolation_level, access_mode)
            .await;
        self.run(txn, callback).await
    }
}
