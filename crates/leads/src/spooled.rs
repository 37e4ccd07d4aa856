//! Storing leads that waited in the outage spool (see the `ciq-spool` crate): the rows
//! were built — ids and `created_at` final — when their request was answered 202; here
//! they are written exactly once, with their `lead.created` events, the idempotency
//! answer a retry will replay, and the record that their entry was applied, all in one
//! transaction.

use std::collections::{HashMap, HashSet};

use ciq_entity::{idempotency_key, idempotency_lead, lead, spool_applied};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait, TryInsertResult,
};
use uuid::Uuid;

use crate::bulk::ROWS_PER_STATEMENT;
use crate::events;
use crate::lead::Lead;
use crate::spam::{self, BlockList, SpamReason};
use ciq_webhooks::outbox;

/// The answer a spooled request's `Idempotency-Key` will replay once its leads are
/// stored (the 201's or the batch's 200's shape), as the request's surface rendered it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RememberedAnswer {
    /// The validated key.
    pub key: String,
    /// The request's fingerprint ([`crate::idempotency::fingerprint`]).
    pub fingerprint: String,
    /// 201 (a create) or 200 (a batch).
    pub status: i32,
    /// The body (a batch: its items, a JSON array).
    pub body: String,
    /// A batch's items that hold a lead (item position, lead id); a create's lead is
    /// its only row.
    #[serde(default)]
    pub held: Vec<(usize, Uuid)>,
}

/// One spooled request: the rows it was answered with, and what the drain must still do
/// for them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpooledRequest {
    /// The account and key the request was made with.
    pub user_id: Uuid,
    /// The rows, built when it was answered.
    pub rows: Vec<lead::Model>,
    /// A browser submission: the account's block list applies at drain (it could not be
    /// read while the store was down). The content rules ran when it was answered.
    pub browser: bool,
    /// Its `Idempotency-Key` answer, if it had a key.
    pub remembered: Option<RememberedAnswer>,
}

/// What a drain did with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Its leads are stored now: the leads, as stored (spam verdicts included).
    Stored(Vec<Lead>),
    /// A drain applied it before (its acknowledgement was lost): nothing written.
    Already,
}

/// Stores the spooled requests `entries` (each named by its spool entry id, unique
/// across streams) in one transaction: entries already applied are skipped; for the
/// others, each browser submission's rows meet the account's block list, the rows are
/// inserted (a row whose id is already stored is skipped), one `lead.created` event per
/// stored lead that is not spam, the idempotency answer remembered (unless the key was
/// used again meanwhile), and the entry recorded as applied. An error writes nothing.
pub async fn apply(
    db: &ciq_store::Db,
    entries: &[(String, SpooledRequest)],
) -> Result<Vec<Applied>, DbErr> {
    let txn = db.begin().await?;
    let now = ciq_entity::now();
    // Each entry's applied record first: the entries whose record is new are this
    // drain's to store; a record already there means a drain stored them before. (An
    // insert finds its conflicts through the primary key whatever the table's size; a
    // look-up first was planned as a scan of a table that grows through the drain.)
    let mut fresh: HashSet<String> = HashSet::with_capacity(entries.len());
    for chunk in entries.chunks(ROWS_PER_STATEMENT) {
        let inserted = spool_applied::Entity::insert_many(chunk.iter().map(|(name, request)| {
            spool_applied::ActiveModel {
                entry: Set(name.clone()),
                user_id: Set(request.user_id),
                applied_at: Set(now),
            }
        }))
        .on_conflict_do_nothing()
        .exec_with_returning_keys(&txn)
        .await?;
        if let TryInsertResult::Inserted(names) = inserted {
            fresh.extend(names);
        }
    }
    let mut block_lists: HashMap<Uuid, BlockList> = HashMap::new();
    let mut outcomes = Vec::with_capacity(entries.len());
    let mut rows = Vec::new();
    let mut keys = Vec::new();
    let mut held = Vec::new();
    for (name, request) in entries {
        if !fresh.contains(name) {
            outcomes.push(Applied::Already);
            continue;
        }
        let mut stored = Vec::with_capacity(request.rows.len());
        for row in &request.rows {
            let mut row = row.clone();
            // The tenant is the entry's, whatever its rows say.
            row.user_id = request.user_id;
            if request.browser && row.spam_reason.is_none() {
                let list = match block_lists.entry(request.user_id) {
                    std::collections::hash_map::Entry::Occupied(list) => list.into_mut(),
                    std::collections::hash_map::Entry::Vacant(place) => {
                        place.insert(spam::block_list(&txn, request.user_id).await?)
                    }
                };
                if list.blocks(&row.email) {
                    row.spam_reason = Some(SpamReason::BlockedEmail.as_str().to_owned());
                    row.spam_at = Some(now);
                }
            }
            stored.push(Lead::from(row.clone()));
            rows.push(row);
        }
        if let Some(remembered) = &request.remembered {
            let lead_id = match remembered.held.is_empty() {
                true => request.rows.first().map(|row| row.id),
                false => None,
            };
            let created_at = request.rows.first().map_or(now, |row| row.created_at);
            keys.push(idempotency_key::ActiveModel {
                user_id: Set(request.user_id),
                key: Set(remembered.key.clone()),
                request_hash: Set(remembered.fingerprint.clone()),
                response_status: Set(Some(remembered.status)),
                response_body: Set(Some(remembered.body.clone())),
                created_at: Set(created_at),
                lead_id: Set(lead_id),
            });
            held.extend(remembered.held.iter().map(|&(item, lead_id)| {
                idempotency_lead::ActiveModel {
                    user_id: Set(request.user_id),
                    lead_id: Set(lead_id),
                    key: Set(remembered.key.clone()),
                    item: Set(i32::try_from(item).unwrap_or(i32::MAX)),
                    created_at: Set(created_at),
                }
            }));
        }
        outcomes.push(Applied::Stored(stored));
    }
    if !rows.is_empty() {
        // A row is never written twice, whatever happened to its entry's
        // acknowledgement (a create whose write committed after all was spooled too,
        // under the same id): the insert skips ids stored already and returns the ids
        // it wrote. One drain may apply 100 batches of 100 leads: no store binds that
        // many parameters in one statement.
        let mut written: HashSet<Uuid> = HashSet::with_capacity(rows.len());
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let inserted =
                lead::Entity::insert_many(chunk.iter().cloned().map(lead::ActiveModel::from))
                    .on_conflict_do_nothing()
                    .exec_with_returning_keys(&txn)
                    .await?;
            if let TryInsertResult::Inserted(ids) = inserted {
                written.extend(ids);
            }
        }
        rows.retain(|row| written.contains(&row.id));
        outbox::fan_out(&txn, &events::created_rows(&rows)).await?;
    }
    if !keys.is_empty() {
        // A claim the request made before the store went (its write then failed and
        // was spooled) gets this answer; a key used again after the outage with its own
        // answer keeps it.
        idempotency_key::Entity::insert_many(keys)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    idempotency_key::Column::UserId,
                    idempotency_key::Column::Key,
                ])
                .update_columns([
                    idempotency_key::Column::ResponseStatus,
                    idempotency_key::Column::ResponseBody,
                    idempotency_key::Column::LeadId,
                ])
                .action_and_where(
                    sea_orm::sea_query::Expr::col((
                        idempotency_key::Entity,
                        idempotency_key::Column::ResponseStatus,
                    ))
                    .is_null()
                    .and(
                        sea_orm::sea_query::Expr::col((
                            idempotency_key::Entity,
                            idempotency_key::Column::RequestHash,
                        ))
                        .equals((
                            sea_orm::sea_query::Alias::new("excluded"),
                            idempotency_key::Column::RequestHash,
                        )),
                    ),
                )
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    for chunk in held.chunks(ROWS_PER_STATEMENT) {
        idempotency_lead::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    idempotency_lead::Column::UserId,
                    idempotency_lead::Column::LeadId,
                    idempotency_lead::Column::Key,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    let stored: usize = outcomes
        .iter()
        .map(|outcome| match outcome {
            Applied::Stored(leads) => leads.len(),
            Applied::Already => 0,
        })
        .sum();
    metrics::counter!("ciq_leads_created_total").increment(stored as u64);
    Ok(outcomes)
}

/// Forgets applied-entry records older than `retention` (an entry is acknowledged
/// seconds after it is applied; the record only has to outlive a lost acknowledgement).
pub async fn purge(db: &ciq_store::Db, retention: std::time::Duration) -> Result<u64, DbErr> {
    let cutoff = ciq_entity::now()
        - chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
    Ok(spool_applied::Entity::delete_many()
        .filter(spool_applied::Column::AppliedAt.lt(cutoff))
        .exec(db)
        .await?
        .rows_affected)
}
