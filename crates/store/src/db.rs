//! The gateway's handle on its database, safe behind a transaction-pooling proxy.
//!
//! PgBouncer in `pool_mode = transaction` (1.18, Debian's, and any version without
//! `max_prepared_statements`) gives a client a server connection for one transaction at
//! a time. sqlx prepares every statement (Parse, then Sync, then Bind/Execute in a second
//! round trip), so a statement outside a transaction may be prepared on one server and
//! executed on another ("prepared statement sqlx_s_1 does not exist"), and a statement
//! name one client leaves behind collides with another client's.
//!
//! [`Db::transaction_pooled`] makes every statement safe there: each one that is not
//! already inside a transaction runs in a transaction of its own (so its Parse and Bind
//! reach the same server), and the connections keep no statements (sqlx's statement cache
//! is off; PgBouncer's `server_reset_query_always = 1` drops what a transaction prepared
//! before the server goes to another client). [`Db::direct`] is sea-orm's connection as
//! it is, at no cost.

use std::pin::Pin;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    ExecResult, IsolationLevel, QueryResult, Statement, TransactionError, TransactionOptions,
    TransactionTrait,
};

/// sea-orm's connection, and whether it goes through a transaction-pooling proxy (see
/// the module docs). Cheap to clone. Implements [`ConnectionTrait`], so entities and
/// queries run on it as on sea-orm's own connection.
#[derive(Clone, Debug)]
pub struct Db {
    inner: DatabaseConnection,
    transaction_pooled: bool,
}

impl Db {
    /// Statements run as sea-orm runs them (PostgreSQL directly or through PgBouncer in
    /// session mode, SQLite).
    pub fn direct(inner: DatabaseConnection) -> Self {
        Self {
            inner,
            transaction_pooled: false,
        }
    }

    /// Every statement outside a transaction runs in one of its own (the connection's
    /// pool must keep no prepared statements: sqlx's statement cache at 0).
    pub fn transaction_pooled(inner: DatabaseConnection) -> Self {
        Self {
            inner,
            transaction_pooled: true,
        }
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

    /// Closes the pool: waits for every connection to come back.
    pub async fn close(&self) -> Result<(), DbErr> {
        self.inner.close_by_ref().await
    }
}

/// Runs `$call` on a transaction of its own (`$db.inner.begin()`), committed after.
macro_rules! alone {
    ($db:expr, |$txn:ident| $call:expr) => {{
        let $txn = $db.inner.begin().await?;
        let result = $call.await?;
        $txn.commit().await?;
        Ok(result)
    }};
}

#[async_trait::async_trait]
impl ConnectionTrait for Db {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        if self.transaction_pooled {
            alone!(self, |txn| txn.execute_raw(stmt))
        } else {
            self.inner.execute_raw(stmt).await
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        // The simple protocol: one round trip, nothing prepared, safe either way.
        self.inner.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        if self.transaction_pooled {
            alone!(self, |txn| txn.query_one_raw(stmt))
        } else {
            self.inner.query_one_raw(stmt).await
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        if self.transaction_pooled {
            alone!(self, |txn| txn.query_all_raw(stmt))
        } else {
            self.inner.query_all_raw(stmt).await
        }
    }
}

/// Transactions as sea-orm's connection makes them: every statement of one reaches the
/// same server connection, through a transaction-pooling proxy too.
#[async_trait::async_trait]
impl TransactionTrait for Db {
    type Transaction = DatabaseTransaction;

    async fn begin(&self) -> Result<DatabaseTransaction, DbErr> {
        self.inner.begin().await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.inner
            .begin_with_config(isolation_level, access_mode)
            .await
    }

    async fn begin_with_options(
        &self,
        options: TransactionOptions,
    ) -> Result<DatabaseTransaction, DbErr> {
        self.inner.begin_with_options(options).await
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
        self.inner.transaction(callback).await
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
        self.inner
            .transaction_with_config(callback, isolation_level, access_mode)
            .await
    }
}
