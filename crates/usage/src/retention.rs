//! Keeping usage small: minute buckets older than [`MINUTES_KEPT`] are rolled up into
//! hour buckets, buckets go after [`DEFAULT_USAGE_RETENTION`], the request log after
//! [`DEFAULT_LOG_RETENTION`]. The roll-up deletes the minutes it adds up in the same
//! statement that reads them (`DELETE ... RETURNING`), so instances rolling up at once
//! never count a minute twice.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ciq_entity::{key_usage, request_log};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use crate::flush::{HOUR, MINUTE, add_counts};
use crate::query::{Interval, MINUTES_KEPT, counts_of};
use crate::{Counts, KeyRef};

/// How long buckets are kept (`CIQ_RETENTION_USAGE_SECS`): 90 days.
pub const DEFAULT_USAGE_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// How long request-log rows are kept (`CIQ_RETENTION_REQUEST_LOG_SECS`): 7 days.
pub const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// What one purge of usage did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Minute buckets added into hour buckets (and deleted).
    pub minutes_rolled_up: u64,
    /// Buckets past their retention.
    pub buckets: u64,
    /// Request-log rows past their retention.
    pub log_rows: u64,
}

/// Rolls up the minutes older than [`MINUTES_KEPT`] at `now`, then deletes buckets
/// older than `usage` and request-log rows older than `log`.
pub async fn purge(
    db: &ciq_store::Db,
    now: DateTime<Utc>,
    usage: Duration,
    log: Duration,
) -> Result<Purged, sea_orm::DbErr> {
    let minutes_rolled_up = roll_up(db, now - MINUTES_KEPT).await?;
    let before = |kept: Duration| now - TimeDelta::from_std(kept).unwrap_or(TimeDelta::MAX);
    let buckets = key_usage::Entity::delete_many()
        .filter(key_usage::Column::StartsAt.lt(before(usage)))
        .exec(db)
        .await?
        .rows_affected;
    let log_rows = request_log::Entity::delete_many()
        .filter(request_log::Column::At.lt(before(log)))
        .exec(db)
        .await?
        .rows_affected;
    Ok(Purged {
        minutes_rolled_up,
        buckets,
        log_rows,
    })
}

/// Adds every minute bucket that starts before `cutoff` into its hour bucket and
/// deletes it, in one transaction. Returns how many minutes it rolled up.
pub async fn roll_up(db: &ciq_store::Db, cutoff: DateTime<Utc>) -> Result<u64, sea_orm::DbErr> {
    let txn = db.begin().await?;
    let minutes = key_usage::Entity::delete_many()
        .filter(key_usage::Column::Granularity.eq(MINUTE))
        .filter(key_usage::Column::StartsAt.lt(cutoff))
        .exec_with_returning(&txn)
        .await?;
    if minutes.is_empty() {
        txn.commit().await?;
        return Ok(0);
    }
    let mut hours: HashMap<(KeyRef, DateTime<Utc>), Counts> = HashMap::new();
    for row in &minutes {
        let key = KeyRef {
            key_id: row.key_id,
            user_id: row.user_id,
        };
        hours
            .entry((key, Interval::Hour.floor(row.starts_at)))
            .or_default()
            .add(&counts_of(row));
    }
    let mut hours: Vec<_> = hours
        .into_iter()
        .map(|((key, starts_at), counts)| (key, starts_at, counts))
        .collect();
    hours.sort_by_key(|(key, starts_at, _)| (key.key_id, *starts_at));
    add_counts(&txn, HOUR, &hours).await?;
    txn.commit().await?;
    Ok(minutes.len() as u64)
}
