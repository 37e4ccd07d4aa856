//! The gateway's hold on its database: a breaker per instance that turns a store
//! outage into immediate answers instead of a pool wait per request.
//!
//! A connection failure or pool timeout ([`is_outage`]), or an operation that outlived
//! its bound, makes the breaker try the store at once (a ping bounded by
//! [`PROBE_TIMEOUT`]); when that fails too the breaker opens. While it is open every
//! operation that needs the store is refused at once ([`Breaker::check`]), operations
//! already waiting are released ([`Breaker::guard`]), and a probe tries the store every
//! [`PROBE_INTERVAL`]; the first success closes it. One breaker is shared by everything of one instance that
//! talks to the store (lead writers, key verification, the Settings pages, the operator
//! API, background jobs).

pub mod db;
pub mod inline;
pub mod kept;
pub mod planned;
pub mod replica;
pub mod secret;
pub mod utc;

pub use db::Db;
pub use replica::{Reads, ReplicaState};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{DbErr, RuntimeErr, Statement};
use tokio::sync::Notify;

/// How often an open breaker tries the store.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// How long one probe may take before it counts as a failure: well under the default
/// pool acquire timeout, so that no request waits on a store that is gone for longer
/// than that timeout.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The `n`th (1-based) bind parameter of a hand-written statement on `backend`:
/// `$n` on PostgreSQL, `?n` on SQLite (numbered, so a parameter may be used twice).
pub fn placeholder(backend: sea_orm::DbBackend, n: usize) -> String {
    match backend {
        sea_orm::DbBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
}

/// `query`'s statement on `backend` with its `LIMIT` written into the text instead of
/// bound as the last parameter.
///
/// PostgreSQL plans a prepared statement afresh on every execution while its generic
/// plan looks dearer than a custom one, and a generic plan that does not know the limit
/// estimates a tenth of the table's rows: a page of leads paid ~0.13 ms of planning per
/// request, and pgbench ran the gateway's page statement at 5 700/s against 8 400–10 400/s
/// with the limit in its text (2026-12-06). Only for a `LIMIT` the caller computed (a
/// number), never a request's text. A statement that does not end in `LIMIT` and its
/// parameter is returned as built.
pub fn literal_limit(backend: sea_orm::DbBackend, query: &impl sea_orm::QueryTrait) -> Statement {
    let mut statement = query.build(backend);
    let Some(values) = statement.values.as_mut() else {
        return statement;
    };
    let place = match backend {
        sea_orm::DbBackend::Postgres => format!(" LIMIT ${}", values.0.len()),
        _ => " LIMIT ?".to_owned(),
    };
    let limit = match values.0.last() {
        Some(sea_orm::Value::BigUnsigned(Some(n))) => n.to_string(),
        Some(sea_orm::Value::BigInt(Some(n))) if *n >= 0 => n.to_string(),
        _ => return statement,
    };
    if let Some(text) = statement.sql.strip_suffix(&place) {
        statement.sql = format!("{text} LIMIT {limit}");
        values.0.pop();
    } else {
        debug_assert!(false, "no trailing LIMIT parameter in {}", statement.sql);
    }
    statement
}

/// Whether `err` says the store is unreachable (a connection failure, a pool timeout,
/// a closed pool) rather than that one statement was refused (a constraint, bad SQL).
pub fn is_outage(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            is_sqlx_outage(e)
        }
        _ => false,
    }
}

/// [`is_outage`] for an error of sqlx itself (group commit's PostgreSQL insert).
pub fn is_sqlx_outage(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_)
    )
}

/// The store is out (the breaker is open): refused without trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreDown;

impl std::fmt::Display for StoreDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the store is unreachable (circuit open)")
    }
}

impl std::error::Error for StoreDown {}

impl ciq_errors::Coded for StoreDown {
    /// 503 with `Retry-After`: the store may be back in a moment.
    fn code(&self) -> ciq_errors::ErrorCode {
        ciq_errors::ErrorCode::ServiceUnavailable
    }
}

/// What readiness and the metrics read of a spool that takes writes while the store is
/// down (the outage spool implements it; the operator surface reads it without
/// depending on the spool).
pub trait Spooling: Send + Sync {
    /// Whether writes may be spooled now (Redis cannot evict them).
    fn accepting(&self) -> bool;
    /// Entries waiting, as last counted.
    fn depth(&self) -> u64;
    /// How long the oldest waiting entry has waited.
    fn oldest_age(&self) -> Option<Duration>;
}

/// One instance's breaker on its store.
pub struct Breaker {
    db: Db,
    bound: Duration,
    open: AtomicBool,
    probing: AtomicBool,
    starting: AtomicBool,
    opened: Notify,
    opened_at: Mutex<Option<Instant>>,
}

impl Breaker {
    /// A closed breaker on `db`; [`Breaker::guard`] gives an operation at most `bound`.
    pub fn new(db: Db, bound: Duration) -> Arc<Self> {
        metrics::gauge!("ciq_store_breaker_open").set(0.0);
        Arc::new(Self {
            db,
            bound,
            open: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            starting: AtomicBool::new(false),
            opened: Notify::new(),
            opened_at: Mutex::new(None),
        })
    }

    /// A breaker held open while the instance's start is not complete (the store was
    /// unreachable when it started, so its schema is not checked yet): everything that
    /// needs the store is refused at once until [`Breaker::started`]. No probe runs;
    /// the start's own task tries the store.
    pub fn starting(db: Db, bound: Duration) -> Arc<Self> {
        let breaker = Self::new(db, bound);
        breaker.starting.store(true, Ordering::Release);
        breaker.trip();
        breaker
    }

    /// Whether the start is still waiting for the store ([`Breaker::starting`]).
    pub fn is_starting(&self) -> bool {
        self.starting.load(Ordering::Acquire)
    }

    /// The start completed (the store answered and its schema is current): closes the
    /// breaker held by [`Breaker::starting`].
    pub fn started(&self) {
        if self.starting.swap(false, Ordering::AcqRel) {
            self.close();
        }
    }

    /// Whether the breaker is open (the store is taken to be gone).
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// `Err` at once while the breaker is open: the caller must not try the store.
    pub fn check(&self) -> Result<(), StoreDown> {
        if self.is_open() {
            Err(StoreDown)
        } else {
            Ok(())
        }
    }

    /// Runs `operation` unless the breaker is open; gives up on it — `Err` — as soon as
    /// the breaker opens meanwhile or the operation outlives the breaker's bound (which
    /// counts as a failure). So nothing waits on a store that is gone for longer than
    /// it takes to find out.
    pub async fn guard<F: Future>(self: &Arc<Self>, operation: F) -> Result<F::Output, StoreDown> {
        // Boxed: polled in place, `operation` would be held twice in this future (the
        // argument and `select!`'s own copy; rustc does not overlap the two), and a
        // caller's future holding this one larger still: a list's read was 28 KB of
        // future state per request, moved into every layer's box (2026-12-06).
        let operation = Box::pin(operation);
        let opened = self.opened.notified();
        tokio::pin!(opened);
        opened.as_mut().enable();
        self.check()?;
        tokio::select! {
            output = operation => Ok(output),
            () = &mut opened => Err(StoreDown),
            () = tokio::time::sleep(self.bound) => {
                self.failure();
                Err(StoreDown)
            }
        }
    }

    /// Notes the outcome of an operation on the store: an outage error is a
    /// [`Breaker::failure`].
    pub fn record<T>(self: &Arc<Self>, result: &Result<T, DbErr>) {
        if let Err(err) = result
            && is_outage(err)
        {
            self.failure();
        }
    }

    /// An operation found the store unreachable: unless a probe is already under way,
    /// try the store now, and open if it does not answer.
    pub fn failure(self: &Arc<Self>) {
        if !self.is_open() && !self.probing.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.clone().confirm());
        }
    }

    /// Whether the store answers a ping within [`PROBE_TIMEOUT`].
    async fn answers(&self) -> bool {
        matches!(
            tokio::time::timeout(PROBE_TIMEOUT, self.db.ping()).await,
            Ok(Ok(()))
        )
    }

    /// The probe after a failure: a store that answers was a passing fault; one that
    /// does not opens the breaker until it answers again.
    async fn confirm(self: Arc<Self>) {
        if !self.answers().await {
            self.trip();
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                if self.answers().await {
                    self.close();
                    break;
                }
            }
        }
        self.probing.store(false, Ordering::Release);
    }

    fn trip(&self) {
        if !self.open.swap(true, Ordering::AcqRel) {
            *self.opened_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            self.opened.notify_waiters();
            metrics::gauge!("ciq_store_breaker_open").set(1.0);
            tracing::error!(
                "store unreachable: circuit open, answering 503 at once until a probe succeeds"
            );
        }
    }

    fn close(&self) {
        if self.open.swap(false, Ordering::AcqRel) {
            let opened = self
                .opened_at
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            let was_open = opened.map_or(Duration::ZERO, |at| at.elapsed());
            metrics::gauge!("ciq_store_breaker_open").set(0.0);
            metrics::counter!("ciq_store_breaker_open_seconds_total").increment(was_open.as_secs());
            tracing::info!(
                open_for_ms = u64::try_from(was_open.as_millis()).unwrap_or(u64::MAX),
                "store reachable again: circuit closed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    mod thing {
        use sea_orm::entity::prelude::*;

        /// A table to build statements of.
        #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
        #[sea_orm(table_name = "things")]
        pub struct Model {
            #[sea_orm(primary_key)]
            pub id: i64,
            pub owner: String,
        }

        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}

        impl ActiveModelBehavior for ActiveModel {}
    }

    #[test]
    fn a_limit_is_written_into_the_text_and_its_parameter_dropped() {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
        let query = thing::Entity::find()
            .filter(thing::Column::Owner.eq("ann"))
            .limit(51);
        let pg = literal_limit(sea_orm::DbBackend::Postgres, &query);
        assert!(
            pg.sql.ends_with(r#"WHERE "things"."owner" = $1 LIMIT 51"#),
            "{}",
            pg.sql
        );
        assert_eq!(pg.values.unwrap().0, vec![sea_orm::Value::from("ann")]);
        let sqlite = literal_limit(sea_orm::DbBackend::Sqlite, &query);
        assert!(
            sqlite
                .sql
                .ends_with(r#"WHERE "things"."owner" = ? LIMIT 51"#),
            "{}",
            sqlite.sql
        );
        assert_eq!(sqlite.values.unwrap().0.len(), 1);
    }

    #[tokio::test]
    async fn a_statement_with_its_limit_written_in_reads_the_same_rows() {
        use sea_orm::{
            ActiveModelTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
            Set,
        };
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let schema = sea_orm::Schema::new(sea_orm::DbBackend::Sqlite);
        db.execute(&schema.create_table_from_entity(thing::Entity))
            .await
            .unwrap();
        for (id, owner) in [(1, "ann"), (2, "bob"), (3, "ann"), (4, "ann")] {
            thing::ActiveModel {
                id: Set(id),
                owner: Set(owner.into()),
            }
            .insert(&db)
            .await
            .unwrap();
        }
        let query = thing::Entity::find()
            .filter(sea_orm::ColumnTrait::eq(&thing::Column::Owner, "ann"))
            .order_by_desc(thing::Column::Id)
            .limit(2);
        let written = thing::Entity::find()
            .from_raw_sql(literal_limit(sea_orm::DbBackend::Sqlite, &query))
            .all(&db)
            .await
            .unwrap();
        let ids: Vec<i64> = written.iter().map(|t| t.id).collect();
        assert_eq!(ids, [4, 3]);
        assert_eq!(written, query.all(&db).await.unwrap());
    }

    #[test]
    fn a_statement_without_a_limit_is_left_as_built() {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let query = thing::Entity::find().filter(thing::Column::Owner.eq("ann"));
        let built = literal_limit(sea_orm::DbBackend::Postgres, &query);
        assert!(built.sql.ends_with("$1"), "{}", built.sql);
        assert_eq!(built.values.unwrap().0.len(), 1);
    }

    fn refused() -> DbErr {
        DbErr::Conn(RuntimeErr::SqlxError(Arc::new(sqlx::Error::PoolTimedOut)))
    }

    async fn breaker() -> (Arc<Breaker>, Db) {
        let db = Db::direct(sea_orm::Database::connect("sqlite::memory:").await.unwrap());
        (Breaker::new(db.clone(), Duration::from_millis(300)), db)
    }

    #[tokio::test]
    async fn a_failure_while_the_store_answers_opens_nothing() {
        let (breaker, _db) = breaker().await;
        breaker.record::<()>(&Err(refused()));
        breaker.record::<()>(&Err(DbErr::Custom("duplicate key".into())));
        tokio::time::sleep(PROBE_TIMEOUT / 2).await;
        assert!(breaker.check().is_ok());
    }

    #[tokio::test]
    async fn a_store_that_does_not_answer_opens_it_and_releases_waiters() {
        let (breaker, db) = breaker().await;
        let waiting = {
            let breaker = breaker.clone();
            tokio::spawn(async move { breaker.guard(std::future::pending::<()>()).await })
        };
        // The store goes away (the pool closes): a failure, a probe that fails, open.
        db.close().await.unwrap();
        breaker.failure();
        let released = tokio::time::timeout(PROBE_TIMEOUT * 3, waiting)
            .await
            .expect("the waiter is released");
        assert_eq!(released.unwrap(), Err(StoreDown));
        tokio::time::timeout(PROBE_TIMEOUT * 3, async {
            while !breaker.is_open() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("open");
        assert_eq!(breaker.check(), Err(StoreDown));
        assert_eq!(breaker.guard(async { 1 }).await, Err(StoreDown));
    }

    #[tokio::test]
    async fn a_starting_breaker_is_held_open_without_probes_until_started() {
        let (_, db) = breaker().await;
        let breaker = Breaker::starting(db, Duration::from_millis(300));
        assert!(breaker.is_starting());
        assert_eq!(breaker.check(), Err(StoreDown));
        // A failure of an operation does not probe it closed: the store answers, but
        // the start (the schema check) has not completed.
        breaker.failure();
        tokio::time::sleep(PROBE_INTERVAL * 2).await;
        assert_eq!(breaker.guard(async { 1 }).await, Err(StoreDown));
        breaker.started();
        assert!(!breaker.is_starting());
        assert_eq!(breaker.guard(async { 2 }).await, Ok(2));
    }

    #[tokio::test]
    async fn an_operation_past_the_bound_is_given_up() {
        let (breaker, _db) = breaker().await;
        let started = Instant::now();
        let out = breaker.guard(std::future::pending::<()>()).await;
        assert_eq!(out, Err(StoreDown));
        assert!(started.elapsed() < Duration::from_secs(1));
        // The store answers the probe that followed: still closed.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(breaker.check().is_ok());
        assert_eq!(breaker.guard(async { 7 }).await, Ok(7));
    }
}
