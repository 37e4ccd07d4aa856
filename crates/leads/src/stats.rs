//! What an account's leads add up to, for its owner's dashboard: leads per UTC day and
//! the most frequent sources, over a span. Counted by the store (grouped in SQL, read
//! by the `(user_id, created_at)` index), never by reading the leads; spam is left out,
//! as it is of the list.

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement};
use uuid::Uuid;

use ciq_store::placeholder as place;

#[derive(Debug, FromQueryResult)]
struct DayCount {
    day: String,
    leads: i64,
}

#[derive(Debug, FromQueryResult)]
struct SourceCount {
    source: String,
    leads: i64,
}

/// Leads of `user_id` created since `since` (not spam), per UTC day, oldest first;
/// days without leads are absent.
pub async fn per_day<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<(NaiveDate, u64)>, DbErr> {
    let backend = db.get_database_backend();
    // SQLite keeps times as RFC 3339 text in UTC: the day is its first ten characters.
    let day = match backend {
        DbBackend::Postgres => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        _ => "substr(created_at, 1, 10)",
    };
    let (p1, p2) = (place(backend, 1), place(backend, 2));
    let sql = format!(
        "SELECT {day} AS day, COUNT(*) AS leads FROM leads \
         WHERE user_id = {p1} AND created_at >= {p2} AND spam_at IS NULL \
         GROUP BY 1 ORDER BY 1"
    );
    let rows = DayCount::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [user_id.into(), since.into()],
    ))
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let day = NaiveDate::parse_from_str(&row.day, "%Y-%m-%d").ok()?;
            Some((day, u64::try_from(row.leads).unwrap_or(0)))
        })
        .collect())
}

/// The `limit` most frequent sources of `user_id`'s leads created since `since` (not
/// spam), most first (ties by name).
pub async fn top_sources<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    since: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(String, u64)>, DbErr> {
    let backend = db.get_database_backend();
    let (p1, p2, p3) = (place(backend, 1), place(backend, 2), place(backend, 3));
    let sql = format!(
        "SELECT source, COUNT(*) AS leads FROM leads \
         WHERE user_id = {p1} AND created_at >= {p2} AND spam_at IS NULL \
         GROUP BY source ORDER BY 2 DESC, 1 LIMIT {p3}"
    );
    let rows = SourceCount::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [
            user_id.into(),
            since.into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ],
    ))
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.source, u64::try_from(row.leads).unwrap_or(0)))
        .collect())
}
