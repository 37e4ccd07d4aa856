//! Writing what the [`Recorder`] counted: one transaction per flush, every few seconds
//! and once more at a clean shutdown. Counts are added to their row (`ON CONFLICT ...
//! DO UPDATE SET success = key_usage.success + excluded.success`), so any number of
//! instances flush into the same buckets; rows are written in key order, so two
//! flushes never wait on each other in a circle. A flush that fails puts its batch
//! back; the next one writes it (an instance killed outright loses at most one
//! interval).

use std::sync::Arc;
use std::time::Duration;

use ciq_entity::{key_usage, request_log};
use ciq_store::Db;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use uuid::Uuid;

use crate::recorder::{Batch, Recorder};
use crate::{Counts, KeyRef};

/// Default time between two flushes (`CIQ_USAGE_FLUSH_SECS`).
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Request-log rows kept per key (older ones go as newer ones are written).
pub const LOG_ROWS_PER_KEY: u64 = 1_000;

/// Rows per `INSERT` (well under both backends' bound on parameters).
const ROWS_PER_STATEMENT: usize = 200;

/// `minute` or `hour`: how long a stored bucket is.
pub const MINUTE: &str = "minute";
/// See [`MINUTE`].
pub const HOUR: &str = "hour";

/// What one flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Bucket rows added to.
    pub buckets: usize,
    /// Request-log rows written.
    pub log_rows: usize,
}

/// Flushes a [`Recorder`] into the store, periodically and on demand.
#[derive(Clone)]
pub struct Flusher {
    recorder: Arc<Recorder>,
    db: Db,
    every: Duration,
}

impl Flusher {
    /// A flusher of `recorder` into `db`, every `every`.
    pub fn new(recorder: Arc<Recorder>, db: Db, every: Duration) -> Self {
        Self {
            recorder,
            db,
            every,
        }
    }

    /// The recorder it flushes.
    pub fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    /// The time between two periodic flushes.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// Writes everything counted so far; on failure puts it back for the next flush.
    /// Counted in `ciq_usage_flushes_total` and `ciq_usage_rows_written_total{table}`.
    pub async fn flush(&self) -> Result<Flushed, sea_orm::DbErr> {
        let batch = self.recorder.take();
        if batch.is_empty() {
            return Ok(Flushed::default());
        }
        match write(&self.db, &batch).await {
            Ok(flushed) => {
                metrics::counter!("ciq_usage_flushes_total").increment(1);
                metrics::counter!("ciq_usage_rows_written_total", "table" => "key_usage")
                    .increment(flushed.buckets as u64);
                metrics::counter!("ciq_usage_rows_written_total", "table" => "request_log")
                    .increment(flushed.log_rows as u64);
                Ok(flushed)
            }
            Err(err) => {
                self.recorder.restore(batch);
                Err(err)
            }
        }
    }

    /// Flushes every [`Flusher::every`], for ever (abort it, then [`Flusher::flush`]
    /// once more, at shutdown). A failure is logged once per run of failures.
    pub async fn run(self) {
        let mut ticker = tokio::time::interval(self.every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let mut failing = false;
        loop {
            ticker.tick().await;
            match self.flush().await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("usage counts are written again");
                }
                Ok(_) => {}
                Err(err) => {
                    if !failing {
                        tracing::warn!(error = %err, "could not write usage counts; they wait for the next flush");
                    }
                    failing = true;
                }
            }
        }
    }
}

/// Writes `batch` in one transaction: bucket counts added to their rows, request-log
/// rows inserted, and each key that got rows trimmed to its newest
/// [`LOG_ROWS_PER_KEY`].
pub async fn write(db: &Db, batch: &Batch) -> Result<Flushed, sea_orm::DbErr> {
    let mut buckets: Vec<_> = batch
        .counts
        .iter()
        .map(|((key, starts_at), counts)| (*key, *starts_at, *counts))
        .collect();
    // One order for every instance: concurrent flushes lock rows in the same order.
    buckets.sort_by_key(|(key, starts_at, _)| (key.key_id, *starts_at));
    let txn = db.begin().await?;
    add_counts(&txn, MINUTE, &buckets).await?;
    for rows in batch.log.chunks(ROWS_PER_STATEMENT) {
        request_log::Entity::insert_many(rows.iter().map(|(key, entry)| {
            request_log::ActiveModel {
                id: Set(Uuid::now_v7()),
                key_id: Set(key.key_id),
                user_id: Set(key.user_id),
                at: Set(entry.at),
                method: Set(entry.method.clone()),
                path: Set(entry.path.clone()),
                status: Set(i32::from(entry.status)),
                code: Set(entry.code.clone()),
                field: Set(entry.field.clone()),
                message: Set(entry.message.clone()),
                request_id: Set(entry.request_id.clone()),
                client: Set(entry.client.clone()),
                origin: Set(entry.origin.clone()),
                user_agent: Set(entry.user_agent.clone()),
            }
        }))
        .exec_without_returning(&txn)
        .await?;
    }
    let mut logged: Vec<Uuid> = batch.log.iter().map(|(key, _)| key.key_id).collect();
    logged.sort_unstable();
    logged.dedup();
    for key_id in logged {
        trim_log(&txn, key_id).await?;
    }
    txn.commit().await?;
    Ok(Flushed {
        buckets: buckets.len(),
        log_rows: batch.log.len(),
    })
}

/// Adds `buckets` (sorted by key and start) to their `granularity` rows.
pub(crate) async fn add_counts<C: ConnectionTrait>(
    db: &C,
    granularity: &str,
    buckets: &[(KeyRef, chrono::DateTime<chrono::Utc>, Counts)],
) -> Result<(), sea_orm::DbErr> {
    use key_usage::Column as C;
    let added = [
        C::Success,
        C::ClientError,
        C::RateLimited,
        C::ServerError,
        C::LeadsCreated,
        C::Spam,
        C::Dropped,
    ];
    for rows in buckets.chunks(ROWS_PER_STATEMENT) {
        let mut on_conflict = OnConflict::columns([C::KeyId, C::Granularity, C::StartsAt]);
        for column in added {
            on_conflict.value(
                column,
                Expr::col((key_usage::Entity, column))
                    .add(Expr::col((Alias::new("excluded"), column))),
            );
        }
        key_usage::Entity::insert_many(rows.iter().map(|(key, starts_at, counts)| {
            let n = |v: u64| Set(i64::try_from(v).unwrap_or(i64::MAX));
            key_usage::ActiveModel {
                key_id: Set(key.key_id),
                granularity: Set(granularity.to_owned()),
                starts_at: Set(*starts_at),
                user_id: Set(key.user_id),
                success: n(counts.success),
                client_error: n(counts.client_error),
                rate_limited: n(counts.rate_limited),
                server_error: n(counts.server_error),
                leads_created: n(counts.leads_created),
                spam: n(counts.spam),
                dropped: n(counts.dropped),
            }
        }))
        .on_conflict(on_conflict)
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// Deletes `key_id`'s request-log rows older than its newest [`LOG_ROWS_PER_KEY`].
async fn trim_log<C: ConnectionTrait>(db: &C, key_id: Uuid) -> Result<(), sea_orm::DbErr> {
    use request_log::Column as C;
    let oldest_kept = request_log::Entity::find()
        .select_only()
        .column(C::Id)
        .filter(C::KeyId.eq(key_id))
        .order_by_desc(C::Id)
        .offset(LOG_ROWS_PER_KEY - 1)
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    if let Some(oldest_kept) = oldest_kept {
        request_log::Entity::delete_many()
            .filter(C::KeyId.eq(key_id))
            .filter(C::Id.lt(oldest_kept))
            .exec(db)
            .await?;
    }
    Ok(())
}
