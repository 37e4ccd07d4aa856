//! The import worker every instance runs: it takes a queued import under a lease,
//! creates its leads a chunk of rows per transaction — the rows, their failures and
//! the import's new position committed together — and renews the lease with each
//! chunk. An instance that stops (even killed) leaves the position of its last commit;
//! once its lease runs out, any instance takes the import over from there, so every
//! row is done exactly once.
//!
//! On PostgreSQL a chunk is written while the one before it commits (two transactions,
//! each on a task of its own, the next chunk read meanwhile): an import is then bound by
//! the store's work, not by the gateway's and the store's taken in turn. The later
//! chunk touches the import's row only once the earlier committed, so chunks commit in
//! the file's order, and one that shares an external id with the chunk before it waits
//! for that chunk first. A chunk that fails takes the one beside it back with it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ciq_store::{Db, StoreDown};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, TransactionTrait,
};
use tokio::sync::{Notify, oneshot};
use uuid::Uuid;

use ciq_entity::lead_import::ImportStatus;
use ciq_entity::lead_import_failure;
use ciq_store::Breaker;

use ciq_leads::LeadError;
use ciq_leads::bulk::{RowOutcome, UpsertRow, upsert_many};
use ciq_leads::rules::Change;
use ciq_leads::store::{Announced, LeadOwner, insert_in};

use crate::store;
use crate::{ImportFile, Mapping, Opened, Resume, Row, RowPlan, plan};

/// Default rows per transaction.
pub const DEFAULT_CHUNK_ROWS: usize = 500;
/// Chunks an import is worked on in one turn before the import that waited longest
/// goes (2 000 rows at the default chunk: a fraction of a second). When no other import
/// waits by then, the turn goes on for as many chunks again, and so on: a lone import
/// reads its file once, not once a turn (each turn reads the rest of the file).
pub const CHUNKS_PER_TURN: usize = 4;
/// Default lease: how long an import stays with an instance that stopped renewing it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How often an idle worker looks for imports started on another instance.
pub const POLL: Duration = Duration::from_secs(1);

/// How a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Rows per transaction.
    pub chunk_rows: usize,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            chunk_rows: DEFAULT_CHUNK_ROWS,
            lease: DEFAULT_LEASE,
        }
    }
}

/// One instance's import worker.
pub struct ImportWorker {
    db: Db,
    breaker: Arc<Breaker>,
    settings: WorkerSettings,
    /// Who holds a lease: this instance, for this run.
    instance: Uuid,
    wake: Notify,
}

/// What a chunk's rows came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    created: i32,
    updated: i32,
    failed: i32,
}

impl ImportWorker {
    /// A worker on `db`, skipping turns while `breaker` is open.
    pub fn new(db: Db, breaker: Arc<Breaker>, settings: WorkerSettings) -> Arc<Self> {
        Arc::new(Self {
            db,
            breaker,
            settings,
            instance: Uuid::now_v7(),
            wake: Notify::new(),
        })
    }

    /// Looks for work now (an import was just started on this instance).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs imports for ever: one at a time, a turn of [`CHUNKS_PER_TURN`] chunks each
    /// (longer while no other import waits), the one that waited longest first, waiting
    /// for a wake-up or [`POLL`] when there is none.
    pub async fn run(self: Arc<Self>) {
        let mut failing = false;
        loop {
            if !self.breaker.is_open() {
                match self.run_one().await {
                    Ok(true) => {
                        failing = false;
                        continue;
                    }
                    Ok(false) => failing = false,
                    Err(err) if !failing => {
                        failing = true;
                        tracing::warn!(error = %err, "lead import worker: the store failed; will retry");
                    }
                    Err(_) => {}
                }
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Takes the import that waited longest and works one turn on it (until it is
    /// done, lost, or the turn is over). `Ok(false)`: nothing was due.
    pub async fn run_one(&self) -> Result<bool, LeadError> {
        let Some(import) = self.claim().await? else {
            return Ok(false);
        };
        self.work(import).await?;
        Ok(true)
    }

    /// Gives back this instance's lease (at shutdown), so another instance, or this
    /// one restarted, takes the import over at once.
    pub async fn release(&self) -> Result<(), DbErr> {
        store::release_leases(&self.db, self.instance).await
    }

    fn lease_end(&self) -> chrono::DateTime<chrono::Utc> {
        ciq_entity::now() + chrono::TimeDelta::from_std(self.settings.lease).unwrap_or_default()
    }

    /// The oldest import that is queued, or running under a lease that ran out (or is
    /// this instance's), now leased to this instance; a conditional update, so of two instances that pick
    /// the same one only one gets it.
    async fn claim(&self) -> Result<Option<store::Claimed>, DbErr> {
        store::claim(&self.db, self.instance, self.lease_end()).await
    }

    /// The rows of `import` from its position on, a chunk per transaction. The file is
    /// read from where the row at the position starts (stored with each chunk), so a
    /// turn costs its own rows, not the file's top again.
    async fn work(&self, import: store::Claimed) -> Result<(), LeadError> {
        let columns: Vec<String> = serde_json::from_str(&import.columns).unwrap_or_default();
        let mapping: Mapping = serde_json::from_str(&import.mapping).unwrap_or_default();
        let resume = import.resume();
        let from = resume.map_or(0, |(at, _)| at.byte);
        let Some(bytes) = store::file_from(&self.db, import.id, from).await? else {
            return self.stop(import.id, "the file is no longer stored").await;
        };
        let problems = mapping.problems(&columns);
        if !problems.is_empty() {
            return self.stop(import.id, &problems.join("; ")).await;
        }
        let opened = match resume {
            Some((at, delimiter)) => {
                ImportFile::rows_from(delimiter, &bytes, at).map(|rows| (delimiter, rows))
            }
            // From the top: the header is read again and checked against the one the
            // mapping was made for, and the rows done (by a version that did not store
            // where they ended) are skipped.
            None => match ImportFile::open(&bytes) {
                Ok(opened) if opened.columns != columns => {
                    return self
                        .stop(import.id, "the file changed since it was read")
                        .await;
                }
                Ok(Opened {
                    delimiter,
                    mut rows,
                    ..
                }) => {
                    let done = usize::try_from(import.position).unwrap_or(0);
                    match rows.by_ref().take(done).find_map(Result::err) {
                        Some(problem) => Err(problem),
                        None => Ok((delimiter, rows)),
                    }
                }
                Err(problem) => Err(problem),
            },
        };
        let (delimiter, mut rows) = match opened {
            Ok(opened) => opened,
            Err(problem) => return self.stop(import.id, &problem.to_string()).await,
        };
        let owner = LeadOwner {
            user_id: import.user_id,
            api_key_id: None,
        };
        // PostgreSQL writes a chunk while the one before it commits (see
        // `Chunk::commit`); SQLite has one writer, so there a chunk waits for the one
        // before it (its rows are still read meanwhile).
        let overlap = self.db.get_database_backend() == DbBackend::Postgres;
        let mut committing: Option<Committing> = None;
        // Where the next chunk starts: the position once every chunk sent has committed.
        let mut position = import.position;
        for chunk_number in 1.. {
            let mut chunk = Vec::with_capacity(self.settings.chunk_rows);
            let mut problem = None;
            for row in rows.by_ref().take(self.settings.chunk_rows) {
                match row {
                    Ok(row) => chunk.push(row),
                    Err(broken) => {
                        problem = Some(broken.to_string());
                        break;
                    }
                }
            }
            if problem.is_some() || chunk.is_empty() {
                if let Some(previous) = committing.take()
                    && !self.settled(previous).await?
                {
                    return Ok(());
                }
                return match problem {
                    Some(problem) => self.stop(import.id, &problem).await,
                    None => self.finish(import.id).await,
                };
            }
            let plans: Vec<(Row, RowPlan)> = chunk
                .into_iter()
                .map(|row| {
                    let plan = plan(&mapping, &columns, &row);
                    (row, plan)
                })
                .collect();
            // Only compared where chunks overlap.
            let ids = if overlap {
                external_ids(&plans)
            } else {
                HashSet::new()
            };
            let rows_done = i32::try_from(plans.len()).unwrap_or(i32::MAX);
            let chunk = Chunk {
                db: self.db.clone(),
                lease: Lease {
                    import_id: import.id,
                    instance: self.instance,
                    position,
                    until: self.lease_end(),
                },
                owner,
                plans,
                next: (rows.resume(), delimiter),
            };
            position += rows_done;
            // A chunk that shares an external id with the one committing waits for it:
            // its rows are applied after that chunk's, and neither waits for a lead the
            // other holds.
            let before = match committing.take() {
                Some(previous) if overlap && previous.ids.is_disjoint(&ids) => Some(previous),
                Some(previous) => {
                    if !self.settled(previous).await? {
                        return Ok(());
                    }
                    None
                }
                None => None,
            };
            committing = Some(match before {
                None => self.send(chunk, None, ids),
                Some(previous) => {
                    let (go, after) = oneshot::channel();
                    let current = self.send(chunk, Some(after), ids);
                    match self.settled(previous).await {
                        Ok(true) => {
                            // It commits only once told (see `Chunk::commit`).
                            let _ = go.send(());
                            current
                        }
                        held => {
                            // Never told, it rolls back.
                            drop(go);
                            let _ = current.commit.await;
                            return held.map(drop);
                        }
                    }
                }
            });
            if chunk_number % CHUNKS_PER_TURN == 0
                && store::others_wait(&self.db, import.id, self.instance).await?
            {
                break;
            }
        }
        if let Some(previous) = committing.take()
            && !self.settled(previous).await?
        {
            return Ok(());
        }
        // The turn is over: the import that waited longest goes first.
        store::end_turn(&self.db, import.id, self.instance).await?;
        Ok(())
    }

    /// Starts committing `chunk` on a task of its own (so it goes on while the next
    /// chunk is read), after the chunk before it when `after` is given.
    fn send(
        &self,
        chunk: Chunk,
        after: Option<oneshot::Receiver<()>>,
        ids: HashSet<String>,
    ) -> Committing {
        let commit = tokio::spawn(chunk.commit(Arc::clone(&self.breaker), after));
        Committing { commit, ids }
    }

    /// Waits for `chunk` to commit and counts its rows: `Ok(false)` when the lease was
    /// lost (another instance holds the import now: this one stalled past its lease).
    async fn settled(&self, chunk: Committing) -> Result<bool, LeadError> {
        let written = chunk.commit.await.map_err(|err| {
            LeadError::Unavailable(format!("an import chunk's task failed: {err}"))
        })??;
        self.breaker.record(&written);
        let Some(counts) = written? else {
            return Ok(false);
        };
        metrics::counter!("ciq_lead_import_rows_total", "outcome" => "created")
            .increment(counts.created as u64);
        metrics::counter!("ciq_lead_import_rows_total", "outcome" => "updated")
            .increment(counts.updated as u64);
        metrics::counter!("ciq_lead_import_rows_total", "outcome" => "failed")
            .increment(counts.failed as u64);
        metrics::counter!("ciq_leads_created_total").increment(counts.created as u64);
        Ok(true)
    }

    /// Marks `import_id` done and drops its file (the failed rows keep their own copy).
    async fn finish(&self, import_id: Uuid) -> Result<(), LeadError> {
        self.end(import_id, ImportStatus::Done, None).await
    }

    /// Stops `import_id` for good: the rows before its position stay.
    async fn stop(&self, import_id: Uuid, reason: &str) -> Result<(), LeadError> {
        tracing::warn!(import = %import_id, reason, "lead import stopped");
        self.end(import_id, ImportStatus::Failed, Some(reason))
            .await
    }

    async fn end(
        &self,
        import_id: Uuid,
        status: ImportStatus,
        error: Option<&str>,
    ) -> Result<(), LeadError> {
        store::end(&self.db, import_id, self.instance, status, error).await?;
        Ok(())
    }
}

/// The external ids a chunk's rows may touch: each upsert's (and the one a patch renames
/// it to) and any a new lead carries.
fn external_ids(plans: &[(Row, RowPlan)]) -> HashSet<String> {
    let mut ids = HashSet::new();
    for (_, plan) in plans {
        match plan {
            RowPlan::Create(new) => ids.extend(new.external_id.clone()),
            RowPlan::Upsert {
                external_id,
                patch,
                new,
            } => {
                ids.insert(external_id.clone());
                if let Change::Set(renamed) = &patch.external_id {
                    ids.insert(renamed.clone());
                }
                if let Ok(new) = new {
                    ids.extend(new.external_id.clone());
                }
            }
            RowPlan::Refused(_) => {}
        }
    }
    ids
}

/// What a chunk's task ends with: the breaker's verdict on the store, then the commit's.
type Written = Result<Result<Option<Counts>, DbErr>, StoreDown>;

/// A chunk being committed by its task, and the external ids its rows touch.
struct Committing {
    commit: tokio::task::JoinHandle<Written>,
    ids: HashSet<String>,
}

/// The lease a chunk's transaction renews: `instance`'s on the import, held at
/// `position` (the chunk's first row), until `until`.
#[derive(Clone, Copy)]
struct Lease {
    import_id: Uuid,
    instance: Uuid,
    position: i32,
    until: chrono::DateTime<chrono::Utc>,
}

impl Lease {
    /// Renews it in `txn` (see [`store::renew`]); `false`: it was lost.
    async fn renew(self, txn: &DatabaseTransaction) -> Result<bool, DbErr> {
        store::renew(
            txn,
            self.import_id,
            self.instance,
            self.position,
            self.until,
        )
        .await
    }
}

/// A chunk of an import's rows, planned, with what its transaction needs: the lease it
/// renews and where reading goes on after it.
struct Chunk {
    db: Db,
    lease: Lease,
    owner: LeadOwner,
    plans: Vec<(Row, RowPlan)>,
    next: (Resume, u8),
}

impl Chunk {
    /// The chunk in one transaction: the leads, the failed rows, and the new position
    /// with the counts, the lease checked and renewed (holding the import's row, so no
    /// one takes it over meanwhile). `None`: the lease was lost, or `after` was dropped
    /// (the chunk before failed); nothing of the chunk is written.
    ///
    /// Without `after`, the lease is checked first. With it, the leads are written
    /// first, then the chunk waits for `after` (the chunk before it committed) and only
    /// then touches the import's row, which that chunk holds until it commits: the two
    /// write at once, and commit in their order.
    ///
    /// Each part runs within `breaker`'s bound, but the wait for `after` (bounded by the
    /// chunk before's own): a chunk that waits long for its turn is no sign of an outage.
    async fn commit(self, breaker: Arc<Breaker>, after: Option<oneshot::Receiver<()>>) -> Written {
        let (lease, (next, delimiter)) = (self.lease, self.next);
        let first = after.is_none();
        let (txn, counts) = match breaker.guard(self.write(first)).await? {
            Ok(Some(written)) => written,
            Ok(None) => return Ok(Ok(None)),
            Err(err) => return Ok(Err(err)),
        };
        if let Some(after) = after
            && after.await.is_err()
        {
            // The chunk before did not commit: neither does this one.
            return breaker
                .guard(async move { txn.rollback().await.map(|()| None) })
                .await;
        }
        breaker
            .guard(async move {
                if !first && !lease.renew(&txn).await? {
                    txn.rollback().await?;
                    return Ok(None);
                }
                store::advance(
                    &txn,
                    lease.import_id,
                    counts.created,
                    counts.updated,
                    counts.failed,
                    next,
                    delimiter,
                )
                .await?;
                txn.commit().await?;
                Ok(Some(counts))
            })
            .await
    }

    /// Begins the chunk's transaction and writes its leads and failed rows (the lease
    /// renewed first when `renew_first`): the transaction, open, and the counts; `None`
    /// when the lease was lost.
    async fn write(
        self,
        renew_first: bool,
    ) -> Result<Option<(DatabaseTransaction, Counts)>, DbErr> {
        let Self {
            db,
            lease,
            owner,
            plans,
            ..
        } = self;
        let import_id = lease.import_id;
        let txn = db.begin().await?;
        if renew_first && !lease.renew(&txn).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let mut counts = Counts::default();
        let mut creates = Vec::new();
        // The upserts, written together (a few statements for the chunk), and their
        // events, fanned out once for the chunk.
        let mut upserts = Vec::new();
        let mut upserted_lines = Vec::new();
        let mut announced = Announced::default();
        let mut failures = Vec::new();
        let failure = |row: &Row, reason: String| {
            lead_import_failure::ActiveModel::from(lead_import_failure::Model {
                import_id,
                line: i32::try_from(row.line).unwrap_or(i32::MAX),
                reason,
                record: row.to_record(),
            })
        };
        for (row, plan) in plans {
            match plan {
                RowPlan::Create(new) => creates.push(new),
                RowPlan::Upsert {
                    external_id,
                    patch,
                    new,
                } => {
                    upserts.push(UpsertRow {
                        external_id,
                        patch: *patch,
                        new: new.as_ref().ok().cloned(),
                    });
                    upserted_lines.push((row, new.err()));
                }
                RowPlan::Refused(reason) => {
                    counts.failed += 1;
                    failures.push(failure(&row, reason));
                }
            }
        }
        let outcomes = upsert_many(&txn, owner, upserts, &mut announced)
            .await
            .map_err(|err| DbErr::Custom(err.to_string()))?;
        for (outcome, (row, why_no_create)) in outcomes.into_iter().zip(upserted_lines) {
            match outcome {
                RowOutcome::Created => counts.created += 1,
                RowOutcome::Updated => counts.updated += 1,
                // Only a row that is no new lead leaves the account without one.
                RowOutcome::Missing => {
                    counts.failed += 1;
                    failures.push(failure(
                        &row,
                        format!(
                            "no lead has this external_id, and the row cannot create one: {}",
                            why_no_create.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        // Rows without an external id never conflict; the skip keeps a row of a file
        // whose external id column is unmapped from ever failing the chunk.
        announced.fan_out(&txn).await?;
        let created = insert_in(&txn, owner, creates).await?;
        counts.created += i32::try_from(created).unwrap_or(i32::MAX);
        if !failures.is_empty() {
            lead_import_failure::Entity::insert_many(failures)
                .exec_without_returning(&txn)
                .await?;
        }
        Ok(Some((txn, counts)))
    }
}
