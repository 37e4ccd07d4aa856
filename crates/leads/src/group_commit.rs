//! Group commit: concurrent creates share one multi-row INSERT.
//!
//! Each request hands its row to a writer and waits; a writer takes every row that is
//! waiting (up to [`MAX_BATCH`]), inserts them in one statement — one round trip, one
//! commit — and only then answers each request. So a 201 still means "this row is
//! durably committed", while under load the store does a fraction of the commits. A
//! batch that fails is retried row by row, so one bad row cannot fail its neighbours.
//!
//! A batch is only worth gathering if rows are on their way. Every create request
//! *announces* itself when it arrives (before authentication, rate limiting and
//! validation) and settles the announcement when its row is queued or when it ends
//! without one. A writer that has drained the queue waits for more only while
//! requests announced before its batch began are outstanding, and never longer than
//! [`MAX_LINGER`]: a lone request is written at once, while under load a commit
//! carries the rows of every request in flight (the store's cost per row falls
//! several-fold from one row per commit to a dozen).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ciq_store::Db;
use sea_orm::EntityTrait;
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::time::Instant;

use ciq_entity::lead;
use ciq_store::Breaker;

use crate::error::LeadError;
use crate::events;

/// A pool connection a PostgreSQL writer keeps between batches.
type PgConnection = sqlx::pool::PoolConnection<sqlx::Postgres>;

/// Most rows in one INSERT (14 columns each stays far below every parameter limit).
pub const MAX_BATCH: usize = 256;

/// Longest a writer holds a gathered batch back waiting for announced rows.
pub const MAX_LINGER: Duration = Duration::from_millis(1);

/// How long a PostgreSQL writer keeps its connection while no rows come.
const KEEP_IDLE: Duration = Duration::from_millis(100);

/// A row to write and where its outcome goes: the row itself once committed (handed
/// back, so the request answers from it without having cloned it first), or why not.
struct Job {
    row: lead::Model,
    done: oneshot::Sender<Result<lead::Model, String>>,
}

/// Announcements issued and settled so far (both only grow).
#[derive(Default)]
struct Expected {
    issued: AtomicU64,
    settled: AtomicU64,
    /// Woken at every settlement.
    settlement: Notify,
}

impl Expected {
    fn settle_one(&self) {
        self.settled.fetch_add(1, Ordering::AcqRel);
        self.settlement.notify_waiters();
    }
}

/// A create request's promise that a row may follow. Settled when the row is queued
/// ([`LeadWriter::write`]), by [`Announcement::settle`], or when dropped — whichever
/// comes first; settling twice has no effect.
pub struct Announcement {
    expected: Option<Arc<Expected>>,
    settled: AtomicBool,
}

impl Announcement {
    /// No row will follow from this request (or it has been queued).
    pub fn settle(&self) {
        if let Some(expected) = &self.expected
            && !self.settled.swap(true, Ordering::AcqRel)
        {
            expected.settle_one();
        }
    }
}

impl Drop for Announcement {
    fn drop(&mut self) {
        self.settle();
    }
}

/// The handle requests write through; cheap to clone.
#[derive(Clone)]
pub struct LeadWriter {
    mode: Mode,
    expected: Arc<Expected>,
    batches: Arc<AtomicU64>,
    breaker: Arc<Breaker>,
    functions: Arc<BatchFunctions>,
}

#[derive(Clone)]
enum Mode {
    Batched(mpsc::Sender<Job>),
    /// Group commit off: one INSERT per request (for comparison, or by choice).
    Direct(Db),
}

impl LeadWriter {
    /// Starts `writers` writer tasks on `db` (1 for SQLite, which has one writer
    /// anyway; a couple for PostgreSQL, so that one gathers while another commits).
    /// They stop when the last handle is dropped, after finishing what was handed to
    /// them. `0` turns group commit off: every request inserts its own row.
    pub fn start(db: Db, writers: usize, breaker: Arc<Breaker>) -> Self {
        Self::start_with_linger(db, writers, breaker, MAX_LINGER)
    }

    /// [`LeadWriter::start`] with another bound on lingering than [`MAX_LINGER`].
    pub fn start_with_linger(
        db: Db,
        writers: usize,
        breaker: Arc<Breaker>,
        linger: Duration,
    ) -> Self {
        let expected = Arc::new(Expected::default());
        let batches = Arc::new(AtomicU64::new(0));
        let functions = Arc::new(BatchFunctions::default());
        if writers == 0 {
            return Self {
                mode: Mode::Direct(db),
                expected,
                batches,
                breaker,
                functions,
            };
        }
        let (jobs, queue) = mpsc::channel::<Job>(MAX_BATCH * writers * 4);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..writers {
            tokio::spawn(write_batches(
                db.clone(),
                functions.clone(),
                breaker.clone(),
                queue.clone(),
                expected.clone(),
                batches.clone(),
                linger,
            ));
        }
        Self {
            mode: Mode::Batched(jobs),
            expected,
            batches,
            breaker,
            functions,
        }
    }

    /// The instance's breaker on the store, which every write goes through.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    /// Batches (multi-row INSERTs) committed or attempted so far.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Announces that a row may follow shortly (see the module documentation).
    pub fn announce(&self) -> Announcement {
        let batched = matches!(self.mode, Mode::Batched(_));
        if batched {
            self.expected.issued.fetch_add(1, Ordering::AcqRel);
        }
        Announcement {
            expected: batched.then(|| self.expected.clone()),
            settled: AtomicBool::new(false),
        }
    }

    /// Inserts `row`; returns it once it is committed (or why it is not). The request's
    /// announcement, if any, is settled as soon as the row is queued. Never a spam row:
    /// a batch does not carry the spam columns.
    pub async fn write(
        &self,
        row: lead::Model,
        announcement: Option<&Announcement>,
    ) -> Result<lead::Model, String> {
        debug_assert!(row.spam_reason.is_none(), "spam is written on its own");
        // While the store is known to be gone, nobody waits for it.
        self.breaker.check().map_err(|down| down.to_string())?;
        let jobs = match &self.mode {
            Mode::Batched(jobs) => jobs,
            Mode::Direct(db) => {
                // Its own transaction, with the lead's webhook deliveries, as a batch's.
                // Boxed: with group commit off only, and inline it made every create's
                // future (moved through each of poem's layers) 10 KB larger.
                let inserted = self
                    .breaker
                    .guard(Box::pin(insert_with_deliveries(db, &[&row])))
                    .await
                    .map_err(|down| down.to_string())?;
                self.breaker.record(&inserted);
                return inserted.map(|()| row).map_err(|e| e.to_string());
            }
        };
        let (done, answer) = oneshot::channel();
        let sent = jobs.send(Job { row, done }).await;
        if let Some(announcement) = announcement {
            announcement.settle();
        }
        sent.map_err(|_| "the lead writer has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the lead writer has stopped".to_owned())?
    }

    /// Inserts `rows` — one request's, none of them spam or with an external id — all
    /// or none, in a statement of their own: a batch's statement as the writers send it
    /// (on PostgreSQL each column one bound array, and the rows' `lead.created` events
    /// in the same statement's outbox row; on SQLite one transaction with their
    /// deliveries), never merged with other requests' rows. What an API batch without
    /// external ids takes: one round trip, no text to escape, where its own transaction
    /// took four.
    pub async fn write_all(&self, db: &Db, rows: &[&lead::Model]) -> Result<(), LeadError> {
        debug_assert!(
            rows.iter()
                .all(|row| row.spam_reason.is_none() && row.external_id.is_none()),
            "spam and external ids are written by the batch's own transaction"
        );
        if rows.is_empty() {
            return Ok(());
        }
        self.breaker.check()?;
        let mut own = None;
        let insert = Box::pin(insert_batch(db, &self.functions, &mut own, rows));
        match self.breaker.guard(insert).await? {
            Ok(()) => Ok(()),
            Err(err) => {
                if err.outage {
                    self.breaker.failure();
                }
                Err(LeadError::Unavailable(err.message))
            }
        }
    }
}

/// Takes the next batch, starting with `first` (just received): gathers what is queued
/// and what the requests announced before then still bring, for at most `linger`
/// (normally [`MAX_LINGER`]). Requests that arrive later wait for the next batch, so a
/// steady stream of new requests cannot hold a batch back. Returns the batch and when
/// its first job was taken.
async fn gather(
    queue: &mut mpsc::Receiver<Job>,
    first_job: Job,
    expected: &Expected,
    linger: Duration,
) -> (Vec<Job>, Instant) {
    let mut batch = vec![first_job];
    let first = Instant::now();
    let horizon = expected.issued.load(Ordering::Acquire);
    let deadline = first + linger;
    loop {
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if batch.len() >= MAX_BATCH {
            return (batch, first);
        }
        let settlement = expected.settlement.notified();
        tokio::pin!(settlement);
        settlement.as_mut().enable();
        // Settlements come in any order, so this is a count, not a set: it may end
        // the wait a little early, never late.
        if expected.settled.load(Ordering::Acquire) >= horizon {
            return (batch, first);
        }
        tokio::select! {
            job = queue.recv() => match job {
                Some(job) => batch.push(job),
                None => return (batch, first),
            },
            () = &mut settlement => {}
            () = tokio::time::sleep_until(deadline) => return (batch, first),
        }
    }
}

async fn write_batches(
    db: Db,
    functions: Arc<BatchFunctions>,
    breaker: Arc<Breaker>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    expected: Arc<Expected>,
    batches: Arc<AtomicU64>,
    linger: Duration,
) {
    // On PostgreSQL each writer keeps one connection of the pool for its batches: the
    // same backend, its plan and caches warm, no pool hand-off per batch. It is given
    // back once the writer has waited KEEP_IDLE for work, so an idle gateway holds
    // none (and closing the pool is not held up by writers).
    let mut own: Option<PgConnection> = None;
    loop {
        let (batch, gathered) = {
            let mut queue = idle_wait(&mut own, queue.lock()).await;
            let Some(first) = idle_wait(&mut own, queue.recv()).await else {
                return;
            };
            gather(&mut queue, first, &expected, linger).await
        };
        batches.fetch_add(1, Ordering::Relaxed);
        metrics::histogram!("ciq_lead_batch_size").record(batch.len() as f64);
        metrics::histogram!("ciq_lead_batch_linger_seconds")
            .record(gathered.elapsed().as_secs_f64());
        let started = Instant::now();
        commit(&db, &functions, &breaker, &mut own, batch).await;
        metrics::histogram!("ciq_lead_commit_seconds").record(started.elapsed().as_secs_f64());
    }
}

/// Awaits `wait`; if that takes longer than [`KEEP_IDLE`], the writer's connection goes
/// back to the pool meanwhile. The same future is awaited to the end, so nothing it
/// would have received is lost.
async fn idle_wait<T>(own: &mut Option<PgConnection>, wait: impl Future<Output = T>) -> T {
    tokio::pin!(wait);
    if own.is_some() {
        match tokio::time::timeout(KEEP_IDLE, &mut wait).await {
            Ok(done) => return done,
            Err(_) => *own = None,
        }
    }
    wait.await
}

/// The PostgreSQL batch insert: a column array per column of `leads`, in one
/// statement text whatever the batch size, so it is parsed and planned once per
/// connection (a `VALUES` list of n rows is a new statement for every n, and PostgreSQL
/// re-plans it at every execution). Its columns are the entity's (sea-orm's own
/// description of each), so it names none itself; made from the first batch's values.
fn batch_insert(columns: &[(lead::Column, ColumnArray<'_>)]) -> String {
    use sea_orm::Iden;
    let names: Vec<String> = columns.iter().map(|(c, _)| c.to_string()).collect();
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, array))| format!("${}::{}[]", i + 1, array.sql_type()))
        .collect();
    format!(
        "INSERT INTO leads ({}) SELECT * FROM UNNEST({})",
        names.join(", "),
        arrays.join(", ")
    )
}

/// One column of a batch, as the array UNNEST reads; texts borrowed from the rows.
enum ColumnArray<'a> {
    Uuid(Vec<Option<uuid::Uuid>>),
    Text(Vec<Option<&'a str>>),
    Int(Vec<Option<i32>>),
    BigInt(Vec<Option<i64>>),
    Time(Vec<Option<chrono::DateTime<chrono::Utc>>>),
}

/// A row's value in one column, borrowed: what [`ColumnArray`] holds of it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell<'a> {
    Uuid(Option<uuid::Uuid>),
    Text(Option<&'a str>),
    Int(Option<i32>),
    BigInt(Option<i64>),
    Time(Option<chrono::DateTime<chrono::Utc>>),
}

impl<'a> Cell<'a> {
    /// `row`'s value in `column`, as the entity stores it (the status as its stored
    /// name), without copying a text: sea-orm's `ModelTrait::get` clones each into a
    /// `Value`, a tenth of a batch's instructions (callgrind, 2026-12-07). The match
    /// names every column, so a new one does not compile until it is placed here; a test
    /// holds each to `get`.
    fn of(row: &'a lead::Model, column: lead::Column) -> Self {
        use lead::Column as C;
        match column {
            C::Id => Self::Uuid(Some(row.id)),
            C::UserId => Self::Uuid(Some(row.user_id)),
            C::ApiKeyId => Self::Uuid(row.api_key_id),
            C::Name => Self::Text(Some(&row.name)),
            C::Email => Self::Text(Some(&row.email)),
            C::Phone => Self::Text(row.phone.as_deref()),
            C::Source => Self::Text(Some(&row.source)),
            C::Industry => Self::Text(Some(&row.industry)),
            C::Score => Self::Int(row.score),
            C::Status => Self::Text(Some(row.status.as_str())),
            C::MonthlyRevenueCents => Self::BigInt(row.monthly_revenue_cents),
            C::BudgetCents => Self::BigInt(row.budget_cents),
            C::Description => Self::Text(row.description.as_deref()),
            C::CreatedAt => Self::Time(Some(row.created_at)),
            C::ExternalId => Self::Text(row.external_id.as_deref()),
            C::UpdatedAt => Self::Time(row.updated_at),
            C::SpamReason => Self::Text(row.spam_reason.as_deref()),
            C::SpamAt => Self::Time(row.spam_at),
            C::Attribution => Self::Text(row.attribution.as_deref()),
            C::Consent => Self::Text(row.consent.as_deref()),
        }
    }
}

impl<'a> ColumnArray<'a> {
    /// PostgreSQL's name for the element type.
    fn sql_type(&self) -> &'static str {
        match self {
            Self::Uuid(_) => "uuid",
            Self::Text(_) => "text",
            Self::Int(_) => "int4",
            Self::BigInt(_) => "int8",
            Self::Time(_) => "timestamptz",
        }
    }

    /// Adds a row's value; `false` when it is of another type than the column's.
    fn push(&mut self, cell: Cell<'a>) -> bool {
        match (self, cell) {
            (Self::Uuid(a), Cell::Uuid(v)) => a.push(v),
            (Self::Text(a), Cell::Text(v)) => a.push(v),
            (Self::Int(a), Cell::Int(v)) => a.push(v),
            (Self::BigInt(a), Cell::BigInt(v)) => a.push(v),
            (Self::Time(a), Cell::Time(v)) => a.push(v),
            _ => return false,
        }
        true
    }

    /// An empty array for cells like `cell`.
    fn like(cell: Cell<'_>, capacity: usize) -> Self {
        match cell {
            Cell::Uuid(_) => Self::Uuid(Vec::with_capacity(capacity)),
            Cell::Text(_) => Self::Text(Vec::with_capacity(capacity)),
            Cell::Int(_) => Self::Int(Vec::with_capacity(capacity)),
            Cell::BigInt(_) => Self::BigInt(Vec::with_capacity(capacity)),
            Cell::Time(_) => Self::Time(Vec::with_capacity(capacity)),
        }
    }

    /// The column as one array literal ([`ciq_store::inline::array`]), for the simple
    /// query a transaction pooler gets; `None` when an element has no literal form there
    /// (the batch is then bound).
    fn literal(&self) -> Option<String> {
        use ciq_store::inline::{array, timestamptz};
        let ty = self.sql_type();
        match self {
            Self::Uuid(a) => array(a.iter().map(|v| v.map(|u| u.to_string())), ty),
            Self::Text(a) => array(a.iter().map(|v| v.map(str::to_owned)), ty),
            Self::Int(a) => array(a.iter().map(|v| v.map(|i| i.to_string())), ty),
            Self::BigInt(a) => array(a.iter().map(|v| v.map(|i| i.to_string())), ty),
            Self::Time(a) => {
                // A NULL stays NULL; a time without a text form sends the batch bound.
                let texts = a
                    .iter()
                    .map(|v| match v {
                        None => Some(None),
                        Some(at) => timestamptz(at).map(Some),
                    })
                    .collect::<Option<Vec<Option<String>>>>()?;
                array(texts, ty)
            }
        }
    }

    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        match self {
            Self::Uuid(a) => query.bind(a),
            Self::Text(a) => query.bind(a),
            Self::Int(a) => query.bind(a),
            Self::BigInt(a) => query.bind(a),
            Self::Time(a) => query.bind(a),
        }
    }
}

/// Whether a batch leaves `column` out: it never fills the spam columns (a spam lead is
/// written on its own: spam is rare, and the common statement then carries no column
/// that is always null).
fn not_batched(column: &lead::Column) -> bool {
    matches!(column, lead::Column::SpamReason | lead::Column::SpamAt)
}

/// Whether a batch of `rows` sends the attribution and consent columns: only when a row
/// of it has either (a server integration's leads never do, and their statement then
/// carries no column that is always null).
fn sends_origin(rows: &[&lead::Model]) -> bool {
    rows.iter()
        .any(|row| row.attribution.is_some() || row.consent.is_some())
}

/// Whether `column` is one [`sends_origin`] decides on.
fn origin_column(column: &lead::Column) -> bool {
    matches!(column, lead::Column::Attribution | lead::Column::Consent)
}

/// `rows` as one array per column of the entity, in the entity's column order (but the
/// spam columns, see [`not_batched`], and the attribution and consent columns when no
/// row has them, see [`sends_origin`]).
fn column_arrays<'a>(
    rows: &[&'a lead::Model],
) -> Result<Vec<(lead::Column, ColumnArray<'a>)>, String> {
    use sea_orm::Iterable;
    let origin = sends_origin(rows);
    lead::Column::iter()
        .filter(|column| !not_batched(column))
        .filter(|column| origin || !origin_column(column))
        .map(|column| {
            let first = rows.first().ok_or("an empty batch")?;
            let mut array = ColumnArray::like(Cell::of(first, column), rows.len());
            for row in rows {
                let cell = Cell::of(row, column);
                if !array.push(cell) {
                    return Err(format!(
                        "column {column:?} holds {cell:?}, unlike its other rows"
                    ));
                }
            }
            Ok((column, array))
        })
        .collect()
}

/// [`batch_insert`] with the batch's webhook outbox row in the same statement, made
/// once per shape: without the attribution and consent columns, and with them.
static INSERT_WITH_OUTBOX: [std::sync::OnceLock<String>; 2] =
    [std::sync::OnceLock::new(), std::sync::OnceLock::new()];

/// Behind a transaction pooler, the names of the functions that run
/// [`INSERT_WITH_OUTBOX`]'s statements in the writers' database, by statement text, once
/// they have made or found them; `None` when they could not (the statement is then sent
/// itself). A function dropped since it was made (SQLSTATE 42883 on the call) is
/// forgotten: that batch is sent as the statement and the next batch makes it again.
///
/// A simple query is parsed and planned on every execution: for a batch's statement
/// that was ~0.25 ms (pgbench, 13 leads: 0.64–0.70 ms a batch sent as text against 0.41 ms
/// prepared, 2026-12-06), PostgreSQL's CPU per create 41 µs against 23 µs directly.
/// PL/pgSQL keeps the plans of a function's statements per server connection, whichever
/// client calls it, so through a transaction pooler the call is planned as cheaply as a
/// prepared statement is executed. The function is named by a hash of its text, so
/// another build's statement (another schema) gets a function of its own and instances
/// of both can run side by side.
type BatchFunctions = ciq_store::planned::Made;

/// `CREATE FUNCTION ciq_lead_batch_<hash>(<the columns' array types>)` running `text`,
/// and the function's name.
fn batch_function(text: &str, columns: &[(lead::Column, ColumnArray<'_>)]) -> (String, String) {
    let types: Vec<String> = columns
        .iter()
        .map(|(_, array)| format!("{}[]", array.sql_type()))
        .collect();
    let name = ciq_store::planned::function_name(
        "ciq_lead_batch_",
        &format!("{}\n{text}", types.join(",")),
    );
    let create = format!(
        "CREATE FUNCTION {name}({}) RETURNS void LANGUAGE plpgsql AS $ciq_batch$ \
         BEGIN {text}; END $ciq_batch$",
        types.join(", ")
    );
    (name, create)
}

/// Makes (or finds) the batch function of `text` on `conn`: its name, or `None` when
/// the database refuses to make it (see [`ciq_store::planned::make_function`]).
async fn make_batch_function(
    conn: &mut sqlx::postgres::PgConnection,
    text: &str,
    columns: &[(lead::Column, ColumnArray<'_>)],
) -> Result<Option<String>, sqlx::Error> {
    let (name, create) = batch_function(text, columns);
    let made = ciq_store::planned::make_function(conn, &create, "lead batch").await?;
    Ok(made.then_some(name))
}

/// Stores `rows` and their webhook deliveries in one transaction, a row at a time
/// elsewhere than in a batch (SQLite's batch, and the row-by-row retry of a batch).
async fn insert_with_deliveries(db: &Db, rows: &[&lead::Model]) -> Result<(), sea_orm::DbErr> {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    let models: Vec<lead::ActiveModel> = rows.iter().map(|r| (*r).clone().into()).collect();
    lead::Entity::insert_many(models)
        .exec_without_returning(&txn)
        .await?;
    ciq_webhooks::outbox::fan_out(&txn, &events::created_rows(rows.iter().copied())).await?;
    txn.commit().await
}

/// Inserts `rows` and their webhook events atomically: on PostgreSQL column arrays
/// through [`INSERT_WITH_OUTBOX`] (one outbox row, fanned out later), elsewhere a
/// multi-row `VALUES` and the outbox's delivery rows in one transaction.
async fn insert_batch(
    db: &Db,
    functions: &BatchFunctions,
    own: &mut Option<PgConnection>,
    rows: &[&lead::Model],
) -> Result<(), BatchError> {
    if db.connection().get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return insert_with_deliveries(db, rows)
            .await
            .map_err(|e| BatchError {
                outage: ciq_store::is_outage(&e),
                message: e.to_string(),
            });
    }
    let pool = db.connection().get_postgres_connection_pool();
    if pool.is_closed() {
        // Closing waits for every connection to come back; this one goes now.
        *own = None;
    }
    let conn = match own {
        Some(conn) => conn,
        None => own.insert(pool.acquire().await.map_err(BatchError::from_sqlx)?),
    };
    let columns = column_arrays(rows).map_err(|message| BatchError {
        outage: false,
        message,
    })?;
    // Made of the entity's column names and types only, once: nothing of a request is
    // in the text.
    let shape = usize::from(columns.iter().any(|(column, _)| origin_column(column)));
    let text = INSERT_WITH_OUTBOX[shape]
        .get_or_init(|| events::with_created_outbox(&batch_insert(&columns)));
    // Behind a transaction pooler: one simple query with the arrays written in (one
    // round trip, an implicit transaction, nothing named on the server) — a call of the
    // batch function where it could be made, the statement itself where not.
    let inlined = if db.is_transaction_pooled() {
        // When the database could not be asked, the statement goes itself (and meets
        // the same outage) and the next batch asks again.
        let function = functions
            .known_or_made(text, || make_batch_function(conn, text, &columns))
            .await
            .unwrap_or(None);
        columns
            .iter()
            .map(|(_, array)| array.literal())
            .collect::<Option<Vec<String>>>()
            .map(|literals| (function, literals))
    } else {
        None
    };
    let mut simple = None;
    if let Some((Some(name), literals)) = &inlined {
        let call = format!("SELECT {name}({})", literals.join(", "));
        match run_simple(conn, call).await {
            // Dropped since it was made: this batch goes as the statement, the next
            // makes the function again.
            Err(err) if ciq_store::planned::undefined_function(&err) => functions.forget(text),
            sent => simple = Some(sent),
        }
    }
    if simple.is_none()
        && let Some(sql) = inlined
            .as_ref()
            .and_then(|(_, literals)| ciq_store::inline::substitute(text, literals))
    {
        simple = Some(run_simple(conn, sql).await);
    }
    let inserted = match simple {
        Some(sent) => sent,
        None => {
            let statement = columns.into_iter().fold(
                sqlx::query(sqlx::AssertSqlSafe(text.as_str())),
                |query, (_, array)| array.bind(query),
            );
            if db.is_transaction_pooled() {
                // A value without a literal form: bound, so Parse and Bind must reach
                // one server connection — in a transaction of its own, unnamed.
                match sqlx::Connection::begin(&mut **conn).await {
                    Ok(mut txn) => match statement.persistent(false).execute(&mut *txn).await {
                        Ok(_) => txn.commit().await,
                        Err(err) => Err(err),
                    },
                    Err(err) => Err(err),
                }
            } else {
                statement.execute(&mut **conn).await.map(drop)
            }
        }
    };
    if inserted.is_err() {
        // Whatever went wrong, the next batch starts on a fresh connection from the pool.
        *own = None;
    }
    inserted.map_err(BatchError::from_sqlx)
}

/// Sends `sql` as one simple query (values written in: nothing for a pooler to keep).
async fn run_simple(conn: &mut sqlx::PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map(drop)
}

/// Why a batch was not stored, and whether the store itself was out of reach.
struct BatchError {
    outage: bool,
    message: String,
}

impl BatchError {
    fn from_sqlx(err: sqlx::Error) -> Self {
        Self {
            outage: ciq_store::is_sqlx_outage(&err),
            message: err.to_string(),
        }
    }
}

/// The batch may or may not have been committed (the connection failed, or the store
/// stopped answering, after the INSERT went out): its rows are looked up by id, within
/// the breaker's bound, and each job is answered by what is there; only when that
/// look-up fails too is every job told the store is unavailable (a retry with an
/// `Idempotency-Key` is then safe).
async fn answer_unknown(db: &Db, breaker: &Arc<Breaker>, batch: Vec<Job>, why: String) {
    use sea_orm::{ColumnTrait, QueryFilter, QuerySelect};
    let ids: Vec<uuid::Uuid> = batch.iter().map(|job| job.row.id).collect();
    let stored = breaker
        .guard(
            lead::Entity::find()
                .select_only()
                .column(lead::Column::Id)
                .filter(lead::Column::Id.is_in(ids))
                .into_tuple::<uuid::Uuid>()
                .all(db),
        )
        .await;
    let stored: std::collections::HashSet<uuid::Uuid> = match stored {
        Ok(Ok(found)) => found.into_iter().collect(),
        _ => std::collections::HashSet::new(),
    };
    for Job { row, done } in batch {
        let answer = if stored.contains(&row.id) {
            Ok(row)
        } else {
            Err(why.clone())
        };
        let _ = done.send(answer);
    }
}

/// Inserts `batch` in one statement and answers every job; on failure, row by row —
/// unless the store was out of reach, when every job gets its answer at once.
async fn commit(
    db: &Db,
    functions: &BatchFunctions,
    breaker: &Arc<Breaker>,
    own: &mut Option<PgConnection>,
    mut batch: Vec<Job>,
) {
    if let Err(down) = breaker.check() {
        for job in batch {
            let _ = job.done.send(Err(down.to_string()));
        }
        return;
    }
    let rows: Vec<&lead::Model> = batch.iter().map(|j| &j.row).collect();
    // Boxed where it is made: the statement's future (sqlx's, several KB) is otherwise
    // copied into the guard's argument and again into this future's state, per batch.
    let insert = Box::pin(insert_batch(db, functions, own, &rows));
    let inserted = match breaker.guard(insert).await {
        Ok(inserted) => inserted,
        Err(down) => {
            // Given up (the store went away meanwhile, or it did not answer in time):
            // the batch may or may not be stored, and the connection is suspect.
            *own = None;
            answer_unknown(db, breaker, batch, down.to_string()).await;
            return;
        }
    };
    match inserted {
        Ok(_) => {
            for Job { row, done } in batch {
                let _ = done.send(Ok(row));
            }
        }
        Err(err) if err.outage => {
            breaker.failure();
            answer_unknown(db, breaker, batch, err.message).await;
        }
        Err(err) if batch.len() == 1 => {
            let job = batch.pop().expect("one job");
            let _ = job.done.send(Err(err.message));
        }
        Err(_) => {
            for Job { row, done } in batch {
                let result = insert_with_deliveries(db, &[&row])
                    .await
                    .map(|()| row)
                    .map_err(|e| e.to_string());
                let _ = done.send(result);
            }
        }
    }
}

#[cfg(test)]
mod unknown_outcome_tests {
    use std::sync::Arc;
    use std::time::Duration;

    use sea_orm::ActiveModelTrait;
    use tokio::sync::oneshot;

    use super::{Job, answer_unknown};

    #[tokio::test]
    async fn a_batch_whose_commit_is_unknown_is_answered_by_what_is_stored() {
        let db = super::tests::store().await;
        let breaker = ciq_store::Breaker::new(db.clone(), Duration::from_secs(5));
        let rows: Vec<ciq_entity::lead::Model> = (0..4)
            .map(|i| super::tests::row(&format!("lead {i}")))
            .collect();
        // The first two made it to the store before the answer was lost.
        for row in &rows[..2] {
            ciq_entity::lead::ActiveModel::from(row.clone())
                .insert(&db)
                .await
                .unwrap();
        }
        type Answer = oneshot::Receiver<Result<ciq_entity::lead::Model, String>>;
        let (jobs, answers): (Vec<Job>, Vec<Answer>) = rows
            .into_iter()
            .map(|row| {
                let (done, answer) = oneshot::channel();
                (Job { row, done }, answer)
            })
            .unzip();
        answer_unknown(&db, &breaker, jobs, "connection reset".into()).await;
        let mut got = Vec::new();
        for answer in answers {
            got.push(answer.await.unwrap().is_ok());
        }
        assert_eq!(got, [true, true, false, false]);
        // When the look-up fails too, nobody is told their lead is stored.
        db.close().await.unwrap();
        let (done, answer) = oneshot::channel();
        let job = Job {
            row: super::tests::row("late"),
            done,
        };
        answer_unknown(&db, &Arc::clone(&breaker), vec![job], "gone".into()).await;
        assert_eq!(answer.await.unwrap().unwrap_err(), "gone");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use ciq_store::Db;
    use sea_orm::{ConnectionTrait, Database, EntityTrait, PaginatorTrait};
    use tokio::time::Instant;

    use super::{Announcement, LeadWriter};

    /// Long enough never to run out in these tests, however slow the machine.
    const PATIENT: Duration = Duration::from_secs(30);
    use ciq_entity::lead;

    /// An in-memory SQLite store with the leads table as the migrations make it.
    pub(super) async fn store() -> Db {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        // Made from the entity, so it has every column; the keys it names are not here.
        db.execute_unprepared("PRAGMA foreign_keys = OFF")
            .await
            .unwrap();
        let schema = sea_orm::Schema::new(sea_orm::DatabaseBackend::Sqlite);
        db.execute(&schema.create_table_from_entity(lead::Entity))
            .await
            .unwrap();
        // What the outbox's statement reads and writes (no endpoints: no deliveries).
        db.execute_unprepared(
            "CREATE TABLE webhook_endpoints (id uuid_text PRIMARY KEY, user_id uuid_text NOT NULL,
             events TEXT NOT NULL, enabled BOOLEAN NOT NULL, filter TEXT);
             CREATE TABLE webhook_deliveries (id BLOB PRIMARY KEY, user_id uuid_text, endpoint_id
             uuid_text, event_id uuid_text, event_type TEXT, lead_id uuid_text, payload TEXT,
             status TEXT, attempts INTEGER, next_attempt_at TEXT, created_at TEXT)",
        )
        .await
        .unwrap();
        Db::direct(db)
    }

    pub(super) fn row(name: &str) -> lead::Model {
        let owner = crate::LeadOwner {
            user_id: uuid::Uuid::now_v7(),
            api_key_id: Some(uuid::Uuid::now_v7()),
        };
        let body = serde_json::json!({"lead": {
            "name": name, "email": "jane@example.com",
            "source": "Website", "industry": "Technology",
        }});
        let new = crate::rules::validate_submission(&body).unwrap();
        crate::lead::row_of(owner, new, ciq_entity::now())
    }

    /// Each column's borrowed cell is the value sea-orm's `get` gives, for a row with
    /// every optional column set and for one with none.
    #[test]
    fn a_rows_cells_are_the_values_sea_orm_reads_from_it() {
        use super::Cell;
        use sea_orm::{Iterable, ModelTrait, Value};
        let value = |cell: Cell<'_>| -> Value {
            match cell {
                Cell::Uuid(v) => v.into(),
                Cell::Text(v) => v.map(str::to_owned).into(),
                Cell::Int(v) => v.into(),
                Cell::BigInt(v) => v.into(),
                Cell::Time(v) => v.into(),
            }
        };
        let bare = row("bare");
        let now = ciq_entity::now();
        let full = lead::Model {
            api_key_id: Some(uuid::Uuid::now_v7()),
            phone: Some("15551234567".into()),
            score: Some(7),
            status: lead::LeadStatus::Qualified,
            monthly_revenue_cents: Some(1_250_000),
            budget_cents: Some(99),
            description: Some("notes".into()),
            external_id: Some("crm-1".into()),
            updated_at: Some(now),
            spam_reason: Some("honeypot".into()),
            spam_at: Some(now),
            attribution: Some("{\"utm_source\":\"google\"}".into()),
            consent: Some("{\"granted\":true}".into()),
            ..row("full")
        };
        for model in [&bare, &full] {
            for column in lead::Column::iter() {
                assert_eq!(
                    value(Cell::of(model, column)),
                    model.get(column),
                    "{column:?}"
                );
            }
        }
    }

    #[test]
    fn the_batch_insert_sends_every_column_of_the_entity_as_its_array() {
        let (a, b) = (row("a"), row("b"));
        let columns = super::column_arrays(&[&a, &b]).unwrap();
        assert_eq!(
            super::batch_insert(&columns),
            "INSERT INTO leads (id, user_id, api_key_id, name, email, phone, source, industry, \
             score, status, monthly_revenue_cents, budget_cents, description, created_at, \
             external_id, updated_at) SELECT * FROM UNNEST($1::uuid[], $2::uuid[], \
             $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
             $9::int4[], $10::text[], $11::int8[], $12::int8[], $13::text[], \
             $14::timestamptz[], $15::text[], $16::timestamptz[])",
            "no row has attribution or consent: the columns are left out"
        );
        let tagged = lead::Model {
            attribution: Some("{\"utm_source\":\"google\"}".into()),
            ..row("c")
        };
        let columns = super::column_arrays(&[&a, &tagged]).unwrap();
        assert!(
            super::batch_insert(&columns).ends_with(
                "external_id, updated_at, attribution, consent) SELECT * FROM UNNEST($1::uuid[], \
                 $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], \
                 $8::text[], $9::int4[], $10::text[], $11::int8[], $12::int8[], $13::text[], \
                 $14::timestamptz[], $15::text[], $16::timestamptz[], $17::text[], $18::text[])"
            ),
            "a row with attribution: both columns are sent"
        );
    }

    async fn stored(db: &Db) -> u64 {
        lead::Entity::find().count(db).await.unwrap()
    }

    #[tokio::test]
    async fn rows_announced_before_a_batch_ride_in_it() {
        let db = store().await;
        let writer = LeadWriter::start_with_linger(
            db.clone(),
            1,
            ciq_store::Breaker::new(db.clone(), PATIENT),
            PATIENT,
        );
        let requests: Vec<Arc<Announcement>> =
            (0..4).map(|_| Arc::new(writer.announce())).collect();
        let tasks: Vec<_> = requests
            .into_iter()
            .enumerate()
            .map(|(i, announcement)| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    // Each request takes a little longer to get its row ready.
                    for _ in 0..i * 3 {
                        tokio::task::yield_now().await;
                    }
                    writer
                        .write(row(&format!("lead {i}")), Some(&announcement))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(stored(&db).await, 4);
        assert_eq!(writer.batches(), 1, "four announced rows, one INSERT");
    }

    #[tokio::test]
    async fn without_announcements_a_row_is_written_at_once() {
        let db = store().await;
        let writer = LeadWriter::start_with_linger(
            db.clone(),
            1,
            ciq_store::Breaker::new(db.clone(), PATIENT),
            PATIENT,
        );
        let started = Instant::now();
        writer.write(row("alone"), None).await.unwrap();
        let announcement = writer.announce();
        writer
            .write(row("alone again"), Some(&announcement))
            .await
            .unwrap();
        assert!(started.elapsed() < PATIENT, "no lingering");
        assert_eq!(writer.batches(), 2);
        assert_eq!(stored(&db).await, 2);
    }

    #[tokio::test]
    async fn a_request_that_brings_no_row_releases_the_batch_when_it_settles() {
        let db = store().await;
        let writer = LeadWriter::start_with_linger(
            db.clone(),
            1,
            ciq_store::Breaker::new(db.clone(), PATIENT),
            PATIENT,
        );
        let failing = writer.announce();
        let mine = Arc::new(writer.announce());
        let started = Instant::now();
        let write = {
            let writer = writer.clone();
            let mine = mine.clone();
            tokio::spawn(async move { writer.write(row("mine"), Some(&mine)).await })
        };
        tokio::task::yield_now().await;
        drop(failing); // e.g. answered 422: settles without a row
        write.await.unwrap().unwrap();
        assert!(started.elapsed() < PATIENT, "released by the settlement");
        assert_eq!(stored(&db).await, 1);
    }

    #[tokio::test]
    async fn an_announcement_never_settled_holds_a_batch_back_only_until_the_linger_bound() {
        let db = store().await;
        let linger = Duration::from_millis(200);
        let writer = LeadWriter::start_with_linger(
            db.clone(),
            1,
            ciq_store::Breaker::new(db.clone(), PATIENT),
            linger,
        );
        let _stuck = writer.announce();
        let mine = writer.announce();
        let started = Instant::now();
        writer.write(row("mine"), Some(&mine)).await.unwrap();
        let waited = started.elapsed();
        assert!(waited >= linger, "waited for the stuck request: {waited:?}");
        assert!(waited < PATIENT, "but not for ever: {waited:?}");
        assert_eq!(stored(&db).await, 1);
    }

    #[tokio::test]
    async fn one_bad_row_fails_alone_and_its_neighbours_are_stored() {
        let db = store().await;
        let writer = LeadWriter::start_with_linger(
            db.clone(),
            1,
            ciq_store::Breaker::new(db.clone(), PATIENT),
            PATIENT,
        );
        let first = row("first");
        let mut clash = row("same id as first");
        clash.id = first.id;
        let rows = [first, row("neighbour"), clash];
        let announcements: Vec<Arc<Announcement>> =
            rows.iter().map(|_| Arc::new(writer.announce())).collect();
        let writes = rows
            .into_iter()
            .zip(announcements)
            .map(|(row, announcement)| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(row, Some(&announcement)).await })
            });
        let mut results = Vec::new();
        for write in writes.collect::<Vec<_>>() {
            results.push(write.await.unwrap());
        }
        assert_eq!(writer.batches(), 1, "all three were in one batch");
        assert!(results[1].is_ok(), "the neighbour is stored");
        assert_eq!(
            results.iter().filter(|r| r.is_err()).count(),
            1,
            "only one of the two rows with the same id fails: {results:?}"
        );
        assert_eq!(stored(&db).await, 2);
    }

    #[tokio::test]
    async fn group_commit_off_inserts_directly() {
        let db = store().await;
        let writer = LeadWriter::start(db.clone(), 0, ciq_store::Breaker::new(db.clone(), PATIENT));
        let announcement = writer.announce();
        writer
            .write(row("direct"), Some(&announcement))
            .await
            .unwrap();
        assert_eq!(writer.batches(), 0);
        assert_eq!(stored(&db).await, 1);
    }
}

#[cfg(test)]
mod literal_tests {
    use super::{ColumnArray, batch_function};
    use ciq_entity::lead;

    /// One function per statement text and argument types, named by their hash, taking
    /// the columns' arrays in order and running the statement on them.
    #[test]
    fn the_batch_function_is_named_by_its_text_and_runs_it() {
        let columns = || {
            vec![
                (lead::Column::Id, ColumnArray::Uuid(Vec::new())),
                (lead::Column::Name, ColumnArray::Text(Vec::new())),
            ]
        };
        let text = "INSERT INTO leads (id, name) SELECT * FROM UNNEST($1::uuid[], $2::text[])";
        let (name, create) = batch_function(text, &columns());
        assert!(name.starts_with("ciq_lead_batch_") && name.len() == "ciq_lead_batch_".len() + 16);
        assert_eq!(
            create,
            format!(
                "CREATE FUNCTION {name}(uuid[], text[]) RETURNS void LANGUAGE plpgsql AS \
                 $ciq_batch$ BEGIN {text}; END $ciq_batch$"
            )
        );
        assert_eq!(batch_function(text, &columns()).0, name);
        let other = text.replace("name", "email");
        assert_ne!(batch_function(&other, &columns()).0, name);
    }

    /// The pooled path's arrays: one literal per column, NULLs kept in place, text
    /// escaped twice (inside the array, then the string); an element without a literal
    /// form sends the batch down the bound path.
    #[test]
    fn a_column_is_one_array_literal_or_nothing() {
        let text = ColumnArray::Text(vec![Some(r#"it's "x" \ here"#), None]);
        assert_eq!(
            text.literal().unwrap(),
            r#"E'{"it''s \\"x\\" \\\\ here",NULL}'::text[]"#
        );
        let ids = ColumnArray::Uuid(vec![Some(uuid::Uuid::nil())]);
        assert_eq!(
            ids.literal().unwrap(),
            r#"E'{"00000000-0000-0000-0000-000000000000"}'::uuid[]"#
        );
        assert!(ColumnArray::Text(vec![Some("a\0b")]).literal().is_none());
        let year_10000 = chrono::NaiveDate::from_ymd_opt(10000, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        assert!(
            ColumnArray::Time(vec![Some(year_10000)])
                .literal()
                .is_none()
        );
        assert_eq!(
            ColumnArray::Time(vec![None]).literal().unwrap(),
            "E'{NULL}'::timestamptz[]"
        );
    }
}
