//! An import's rows in the database, the only module that writes `lead_imports`. Every
//! query of a page names the account: an import of another account is "not found"
//! exactly like a missing one. The worker's lease (claim, renew, advance, end) is here too.

use chrono::{DateTime, Utc};
use ciq_entity::AccountScoped;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, TransactionSession, TransactionTrait, UpdateMany,
    sea_query::{Expr, ExprTrait, Func},
};
use uuid::Uuid;

use ciq_entity::lead_import::{self, ImportStatus};
use ciq_entity::lead_import_failure;

use super::{ImportFile, Mapping, Resume};

/// How long a finished import (and its list of failed rows) is kept.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// An import without its file: what the pages show.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct ImportSummary {
    /// Import id.
    pub id: Uuid,
    /// The account.
    pub user_id: Uuid,
    /// The file's name.
    pub file_name: String,
    /// Where it is.
    pub status: ImportStatus,
    /// The header row (JSON array).
    pub columns: String,
    /// The mapping (JSON).
    pub mapping: String,
    /// Data rows.
    pub total_rows: i32,
    /// Data rows done.
    pub position: i32,
    /// Leads created.
    pub created_count: i32,
    /// Leads updated.
    pub updated_count: i32,
    /// Rows refused.
    pub failed_count: i32,
    /// Why it stopped, when it failed as a whole.
    pub error: Option<String>,
    /// Uploaded.
    pub created_at: DateTime<Utc>,
    /// Done.
    pub finished_at: Option<DateTime<Utc>>,
}

impl ImportSummary {
    /// The header row.
    pub fn column_names(&self) -> Vec<String> {
        serde_json::from_str(&self.columns).unwrap_or_default()
    }

    /// The mapping as saved (the suggested one until the owner changes it).
    pub fn current_mapping(&self) -> Mapping {
        serde_json::from_str(&self.mapping).unwrap_or_default()
    }
}

const SUMMARY_COLUMNS: [lead_import::Column; 14] = [
    lead_import::Column::Id,
    lead_import::Column::UserId,
    lead_import::Column::FileName,
    lead_import::Column::Status,
    lead_import::Column::Columns,
    lead_import::Column::Mapping,
    lead_import::Column::TotalRows,
    lead_import::Column::Position,
    lead_import::Column::CreatedCount,
    lead_import::Column::UpdatedCount,
    lead_import::Column::FailedCount,
    lead_import::Column::Error,
    lead_import::Column::CreatedAt,
    lead_import::Column::FinishedAt,
];

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// Most drafts (uploaded, not started) an account keeps.
pub const MAX_DRAFTS: u64 = 20;
/// Most imports of one account queued or running at once.
pub const MAX_PENDING: u64 = 3;

/// Why an import was not kept or not started.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The store failed.
    #[error("the import store failed: {0}")]
    Store(#[from] DbErr),
    /// The account has [`MAX_DRAFTS`] drafts already.
    #[error(
        "You have {MAX_DRAFTS} imports that were never started: start or discard one of them first."
    )]
    TooManyDrafts,
    /// The account has [`MAX_PENDING`] imports queued or running.
    #[error(
        "{MAX_PENDING} of your imports are waiting or running: start this one when one of them has finished."
    )]
    TooManyPending,
}

/// How many of `user_id`'s imports are in one of `statuses`.
async fn count_in(
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    statuses: &[ImportStatus],
) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    lead_import::Entity::in_account(user_id)
        .filter(lead_import::Column::Status.is_in(statuses.iter().copied()))
        .count(txn)
        .await
}

/// Keeps an upload (a file [`ImportFile::read`] accepted) as a draft import of
/// `user_id`'s account, with the mapping its header suggests; returns its id. Refused
/// past [`MAX_DRAFTS`] drafts (counted with the account's row locked, so concurrent
/// uploads cannot pass the cap together).
pub async fn create(
    db: &(impl ConnectionTrait + TransactionTrait),
    user_id: Uuid,
    file_name: &str,
    bytes: Vec<u8>,
    file: &ImportFile,
) -> Result<Uuid, ImportError> {
    let txn = db.begin().await?;
    ciq_entity::user::lock(&txn, user_id).await?;
    if count_in(&txn, user_id, &[ImportStatus::Draft]).await? >= MAX_DRAFTS {
        return Err(ImportError::TooManyDrafts);
    }
    let now = ciq_entity::now();
    let id = Uuid::now_v7();
    let name: String = file_name.chars().take(255).collect();
    lead_import::Entity::insert(lead_import::ActiveModel::from(lead_import::Model {
        id,
        user_id,
        file_name: name,
        status: ImportStatus::Draft,
        columns: json(&file.columns),
        mapping: json(&Mapping::suggested(&file.columns)),
        content: Some(bytes),
        total_rows: i32::try_from(file.rows).unwrap_or(i32::MAX),
        position: 0,
        resume_byte: None,
        resume_line: None,
        delimiter: None,
        created_count: 0,
        updated_count: 0,
        failed_count: 0,
        error: None,
        lease_owner: None,
        lease_until: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    }))
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// Deletes a draft of `user_id`'s account (an import never started); `false`: no such
/// draft.
pub async fn discard(db: &impl ConnectionTrait, user_id: Uuid, id: Uuid) -> Result<bool, DbErr> {
    let deleted = lead_import::Entity::delete_in_account(user_id)
        .filter(lead_import::Column::Id.eq(id))
        .filter(lead_import::Column::Status.eq(ImportStatus::Draft))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// The import `id` of `user_id`'s account, without its file.
pub async fn find(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<ImportSummary>, DbErr> {
    lead_import::Entity::in_account(user_id)
        .select_only()
        .columns(SUMMARY_COLUMNS)
        .filter(lead_import::Column::Id.eq(id))
        .into_model::<ImportSummary>()
        .one(db)
        .await
}

/// The file of the import `id` of `user_id`'s account (`None` once it is done).
pub async fn content(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Vec<u8>>, DbErr> {
    Ok(lead_import::Entity::in_account(user_id)
        .select_only()
        .column(lead_import::Column::Content)
        .filter(lead_import::Column::Id.eq(id))
        .into_tuple::<Option<Vec<u8>>>()
        .one(db)
        .await?
        .flatten())
}

/// `user_id`'s latest imports, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    limit: u64,
) -> Result<Vec<ImportSummary>, DbErr> {
    lead_import::Entity::in_account(user_id)
        .select_only()
        .columns(SUMMARY_COLUMNS)
        .order_by_desc(lead_import::Column::CreatedAt)
        .order_by_desc(lead_import::Column::Id)
        .limit(limit)
        .into_model::<ImportSummary>()
        .all(db)
        .await
}

/// Saves the mapping of a draft import of `user_id`'s account and, with `start`,
/// queues it for the workers — refused while [`MAX_PENDING`] of the account's imports
/// are queued or running (counted with the account's row locked). `false` when there
/// is no such draft (missing, another account's, or already started: a started
/// import's mapping never changes).
pub async fn save_mapping(
    db: &(impl ConnectionTrait + TransactionTrait),
    user_id: Uuid,
    id: Uuid,
    mapping: &Mapping,
    start: bool,
) -> Result<bool, ImportError> {
    let txn = db.begin().await?;
    if start {
        ciq_entity::user::lock(&txn, user_id).await?;
        let pending = [ImportStatus::Queued, ImportStatus::Running];
        if count_in(&txn, user_id, &pending).await? >= MAX_PENDING {
            return Err(ImportError::TooManyPending);
        }
    }
    let status = if start {
        ImportStatus::Queued
    } else {
        ImportStatus::Draft
    };
    let updated = lead_import::Entity::update_in_account(user_id)
        .col_expr(lead_import::Column::Mapping, Expr::value(json(mapping)))
        .col_expr(lead_import::Column::Status, Expr::value(status.as_str()))
        .col_expr(
            lead_import::Column::UpdatedAt,
            Expr::value(ciq_entity::now()),
        )
        .filter(lead_import::Column::Id.eq(id))
        .filter(lead_import::Column::Status.eq(ImportStatus::Draft))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(updated.rows_affected == 1)
}

/// The failed rows of the import `id` of `user_id`'s account, in file order, at most
/// `limit` (the account is in the query: another account's import has none).
pub async fn failures(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
    limit: Option<u64>,
) -> Result<Vec<lead_import_failure::Model>, DbErr> {
    lead_import_failure::Entity::find()
        .inner_join(lead_import::Entity)
        .filter(lead_import::Column::UserId.eq(user_id))
        .filter(lead_import_failure::Column::ImportId.eq(id))
        .order_by_asc(lead_import_failure::Column::Line)
        .limit(limit)
        .all(db)
        .await
}

/// Deletes imports finished (or abandoned as drafts) longer than `retention` ago, with
/// their failed rows; their leads stay. Returns how many.
pub async fn purge(
    db: &impl ConnectionTrait,
    retention: std::time::Duration,
) -> Result<u64, DbErr> {
    let before = ciq_entity::now()
        - chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
    let stale = lead_import::Entity::find()
        .select_only()
        .column(lead_import::Column::Id)
        .filter(lead_import::Column::UpdatedAt.lt(before))
        .filter(lead_import::Column::Status.is_in([
            ImportStatus::Done,
            ImportStatus::Failed,
            ImportStatus::Draft,
        ]))
        .into_tuple::<Uuid>()
        .all(db)
        .await?;
    if stale.is_empty() {
        return Ok(0);
    }
    // Failures first, so that the delete does not lean on the foreign key's cascade.
    lead_import_failure::Entity::delete_many()
        .filter(lead_import_failure::Column::ImportId.is_in(stale.clone()))
        .exec(db)
        .await?;
    Ok(lead_import::Entity::delete_many()
        .filter(lead_import::Column::Id.is_in(stale))
        .exec(db)
        .await?
        .rows_affected)
}

// ---- the worker's lease on an import -------------------------------------------------

/// `update` that also takes the lease off the import (owner and end cleared).
fn unleased(update: UpdateMany<lead_import::Entity>) -> UpdateMany<lead_import::Entity> {
    update
        .col_expr(
            lead_import::Column::LeaseOwner,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(
            lead_import::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
}

/// Gives back `instance`'s leases (at shutdown): its running imports are queued again,
/// so another instance, or this one restarted, takes them over at once.
pub async fn release_leases(db: &impl ConnectionTrait, instance: Uuid) -> Result<(), DbErr> {
    unleased(lead_import::Entity::update_many())
        .col_expr(
            lead_import::Column::Status,
            Expr::value(ImportStatus::Queued.as_str()),
        )
        .filter(lead_import::Column::LeaseOwner.eq(instance))
        .filter(lead_import::Column::Status.eq(ImportStatus::Running))
        .exec(db)
        .await
        .map(|_| ())
}

/// The states of an import a worker may take up.
const PENDING: [ImportStatus; 2] = [ImportStatus::Queued, ImportStatus::Running];

/// An import [`claim`] may take for `instance` at `now`: no lease, a lease that ran out,
/// or `instance`'s own (left by a chunk that failed on a store error: it goes on at once
/// instead of after its lease).
fn due(instance: Uuid, now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::any()
        .add(lead_import::Column::LeaseUntil.is_null())
        .add(lead_import::Column::LeaseUntil.lt(now))
        .add(lead_import::Column::LeaseOwner.eq(instance))
}

/// Whether an import other than `id` waits for a worker: one [`claim`] would give
/// `instance` now. While none does, the worker on `id` keeps its turn.
pub async fn others_wait(
    db: &impl ConnectionTrait,
    id: Uuid,
    instance: Uuid,
) -> Result<bool, DbErr> {
    let waiting = lead_import::Entity::find()
        .select_only()
        .column(lead_import::Column::Id)
        .filter(lead_import::Column::Id.ne(id))
        .filter(lead_import::Column::Status.is_in(PENDING))
        .filter(due(instance, ciq_entity::now()))
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    Ok(waiting.is_some())
}

/// The oldest import that is queued, or running under a lease that ran out (or is
/// `instance`'s), now leased to `instance` until `lease_end`; a conditional update, so of
/// two instances that pick the same one only one gets it.
pub async fn claim(
    db: &impl ConnectionTrait,
    instance: Uuid,
    lease_end: DateTime<Utc>,
) -> Result<Option<Claimed>, DbErr> {
    let now = ciq_entity::now();
    let candidates = lead_import::Entity::find()
        .select_only()
        .column(lead_import::Column::Id)
        .filter(lead_import::Column::Status.is_in(PENDING))
        .filter(due(instance, now))
        // The one that waited longest since its last turn (or its start): imports take
        // turns, so one account's big file does not hold another's small one back.
        .order_by_asc(lead_import::Column::UpdatedAt)
        .limit(8)
        .into_tuple::<Uuid>()
        .all(db)
        .await?;
    for id in candidates {
        let taken = lead_import::Entity::update_many()
            .col_expr(
                lead_import::Column::Status,
                Expr::value(ImportStatus::Running.as_str()),
            )
            .col_expr(lead_import::Column::LeaseOwner, Expr::value(instance))
            .col_expr(lead_import::Column::LeaseUntil, Expr::value(lease_end))
            .col_expr(lead_import::Column::UpdatedAt, Expr::value(now))
            .filter(lead_import::Column::Id.eq(id))
            .filter(lead_import::Column::Status.is_in(PENDING))
            .filter(due(instance, now))
            .exec(db)
            .await?;
        if taken.rows_affected == 1 {
            return lead_import::Entity::find_by_id(id)
                .select_only()
                .columns([
                    lead_import::Column::Id,
                    lead_import::Column::UserId,
                    lead_import::Column::Columns,
                    lead_import::Column::Mapping,
                    lead_import::Column::Position,
                    lead_import::Column::ResumeByte,
                    lead_import::Column::ResumeLine,
                    lead_import::Column::Delimiter,
                ])
                .into_model::<Claimed>()
                .one(db)
                .await;
        }
    }
    Ok(None)
}

/// An import a worker claimed, without its file: [`file_from`] reads the part of the
/// file the turn needs.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Claimed {
    /// Import id.
    pub id: Uuid,
    /// The account.
    pub user_id: Uuid,
    /// The header row (JSON array).
    pub columns: String,
    /// The mapping (JSON).
    pub mapping: String,
    /// Data rows done.
    pub position: i32,
    /// Where reading the file goes on after the `position` rows done (the end of the
    /// last one), once a chunk stored it.
    pub resume_byte: Option<i64>,
    /// The line that byte is on.
    pub resume_line: Option<i64>,
    /// The file's cell separator.
    pub delimiter: Option<i16>,
}

impl Claimed {
    /// Where reading goes on and the file's separator; `None` before the first chunk
    /// (or for an import started before they were stored).
    pub fn resume(&self) -> Option<(Resume, u8)> {
        Some((
            Resume {
                byte: u64::try_from(self.resume_byte?).ok()?,
                line: u64::try_from(self.resume_line?).ok()?,
            },
            u8::try_from(self.delimiter?).ok()?,
        ))
    }
}

/// The file of import `id` from byte `from` on (0: all of it); `None` once the import is
/// done. Only the rest is read: a turn late in a big file does not load its top again.
pub async fn file_from(
    db: &impl ConnectionTrait,
    id: Uuid,
    from: u64,
) -> Result<Option<Vec<u8>>, DbErr> {
    // `substr` of a bytea (PostgreSQL) or a blob (SQLite) counts bytes from 1.
    // An `int` (PostgreSQL has no `substr(bytea, bigint)`); files are at most 10 MB.
    let start = i32::try_from(from).unwrap_or(i32::MAX).saturating_add(1);
    Ok(lead_import::Entity::find_by_id(id)
        .select_only()
        .expr(
            Func::cust("substr")
                .arg(Expr::col(lead_import::Column::Content))
                .arg(start),
        )
        .into_tuple::<Option<Vec<u8>>>()
        .one(db)
        .await?
        .flatten())
}

/// Renews `instance`'s lease on import `id` until `lease_end` if it still holds it at
/// `position` (holding the import's row for the rest of the transaction `txn`, so no
/// one takes it over meanwhile); `false`: the lease was lost.
pub async fn renew(
    txn: &impl ConnectionTrait,
    id: Uuid,
    instance: Uuid,
    position: i32,
    lease_end: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let held = lead_import::Entity::update_many()
        .col_expr(lead_import::Column::LeaseUntil, Expr::value(lease_end))
        .filter(lead_import::Column::Id.eq(id))
        .filter(lead_import::Column::LeaseOwner.eq(instance))
        .filter(lead_import::Column::Position.eq(position))
        .exec(txn)
        .await?;
    Ok(held.rows_affected == 1)
}

/// Ends `instance`'s turn on import `id` (still running): its lease is given back, so
/// the import that waited longest goes next and this one after it.
pub async fn end_turn(db: &impl ConnectionTrait, id: Uuid, instance: Uuid) -> Result<(), DbErr> {
    unleased(lead_import::Entity::update_many())
        .filter(lead_import::Column::Id.eq(id))
        .filter(lead_import::Column::LeaseOwner.eq(instance))
        .exec(db)
        .await?;
    Ok(())
}

/// Moves import `id`'s position past a chunk and adds its counts, in the chunk's
/// transaction `txn`; `next` is where reading the file goes on after the chunk, and
/// `delimiter` the file's separator.
pub async fn advance(
    txn: &impl ConnectionTrait,
    id: Uuid,
    created: i32,
    updated: i32,
    failed: i32,
    next: Resume,
    delimiter: u8,
) -> Result<(), DbErr> {
    lead_import::Entity::update_many()
        .col_expr(
            lead_import::Column::ResumeByte,
            Expr::value(i64::try_from(next.byte).unwrap_or(i64::MAX)),
        )
        .col_expr(
            lead_import::Column::ResumeLine,
            Expr::value(i64::try_from(next.line).unwrap_or(i64::MAX)),
        )
        .col_expr(
            lead_import::Column::Delimiter,
            Expr::value(i16::from(delimiter)),
        )
        .col_expr(
            lead_import::Column::Position,
            Expr::col(lead_import::Column::Position).add(created + updated + failed),
        )
        .col_expr(
            lead_import::Column::CreatedCount,
            Expr::col(lead_import::Column::CreatedCount).add(created),
        )
        .col_expr(
            lead_import::Column::UpdatedCount,
            Expr::col(lead_import::Column::UpdatedCount).add(updated),
        )
        .col_expr(
            lead_import::Column::FailedCount,
            Expr::col(lead_import::Column::FailedCount).add(failed),
        )
        .col_expr(
            lead_import::Column::UpdatedAt,
            Expr::value(ciq_entity::now()),
        )
        .filter(lead_import::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Ends import `id` as `status` (`error`: why it stopped) if `instance` holds it: the
/// file is dropped (the failed rows keep their own copy), the lease given back.
pub async fn end(
    db: &impl ConnectionTrait,
    id: Uuid,
    instance: Uuid,
    status: ImportStatus,
    error: Option<&str>,
) -> Result<(), DbErr> {
    let now = ciq_entity::now();
    unleased(lead_import::Entity::update_many())
        .col_expr(lead_import::Column::Status, Expr::value(status.as_str()))
        .col_expr(
            lead_import::Column::Error,
            Expr::value(error.map(str::to_owned)),
        )
        .col_expr(
            lead_import::Column::Content,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .col_expr(lead_import::Column::FinishedAt, Expr::value(now))
        .col_expr(lead_import::Column::UpdatedAt, Expr::value(now))
        .filter(lead_import::Column::Id.eq(id))
        .filter(lead_import::Column::LeaseOwner.eq(instance))
        .exec(db)
        .await?;
    Ok(())
}
