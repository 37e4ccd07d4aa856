//! Reading many leads at once: a page of a list.
//!
//! sea-orm turns a row into a model column by column *by name* (a hash lookup of the
//! name in the row's columns, a type check, and for every NULL an error value with the
//! column's name formatted into it, which the `Option` then discards). For a page of 50
//! leads of 20 columns that was a third of the gateway's CPU per page (perf, dwarf call
//! graphs, 2026-12-06). On PostgreSQL [`read`] runs the statement through sqlx itself
//! and decodes each row by position; elsewhere (SQLite, a statement whose parameters it
//! does not bind) it is sea-orm's reading.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, RuntimeErr, Statement, Value};
use sqlx::Row;

use ciq_entity::lead::{self, LeadStatus};
use ciq_store::Db;

/// The columns [`read`] decodes, in the order it decodes them: the entity's own order,
/// which is the order sea-orm selects them in (a test holds the two together).
pub(crate) const COLUMNS: [&str; 20] = [
    "id",
    "user_id",
    "api_key_id",
    "name",
    "email",
    "phone",
    "source",
    "industry",
    "score",
    "status",
    "monthly_revenue_cents",
    "budget_cents",
    "description",
    "created_at",
    "external_id",
    "updated_at",
    "spam_reason",
    "spam_at",
    "attribution",
    "consent",
];

/// The leads `statement` selects — every column of `leads` in [`COLUMNS`]' order, as a
/// `lead::Entity::find()` query selects them.
pub(crate) async fn read(db: &Db, statement: Statement) -> Result<Vec<lead::Model>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return lead::Entity::find().from_raw_sql(statement).all(db).await;
    }
    let values = statement
        .values
        .as_ref()
        .map(|v| v.0.as_slice())
        .unwrap_or_default();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement.sql.as_str()));
    for value in values {
        query = match bind(query, value) {
            Some(query) => query,
            // A parameter type this module does not bind: sea-orm binds them all.
            None => {
                return lead::Entity::find().from_raw_sql(statement).all(db).await;
            }
        };
    }
    let pool = db.connection().get_postgres_connection_pool();
    let rows = if db.is_transaction_pooled() {
        // Behind a transaction pooler Parse and Bind must reach one server connection.
        let mut txn = pool.begin().await.map_err(query_error)?;
        let rows = query.fetch_all(&mut *txn).await.map_err(query_error)?;
        txn.commit().await.map_err(query_error)?;
        rows
    } else {
        query.fetch_all(pool).await.map_err(query_error)?
    };
    rows.iter().map(model).collect()
}

/// `value` bound to `query`; `None` for a type a lead filter never sends.
fn bind<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    value: &Value,
) -> Option<sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>> {
    Some(match value {
        Value::Uuid(v) => query.bind(*v),
        Value::String(v) => query.bind(v.clone()),
        Value::ChronoDateTimeUtc(v) => query.bind(*v),
        Value::Int(v) => query.bind(*v),
        Value::BigInt(v) => query.bind(*v),
        Value::Bool(v) => query.bind(*v),
        _ => return None,
    })
}

/// A PostgreSQL row of [`COLUMNS`] as a lead.
fn model(row: &sqlx::postgres::PgRow) -> Result<lead::Model, DbErr> {
    if row.len() != COLUMNS.len() {
        return Err(DbErr::Type(format!(
            "a lead row has {} columns, not {}",
            row.len(),
            COLUMNS.len()
        )));
    }
    let status: String = row.try_get(9).map_err(query_error)?;
    Ok(lead::Model {
        id: row.try_get(0).map_err(query_error)?,
        user_id: row.try_get(1).map_err(query_error)?,
        api_key_id: row.try_get(2).map_err(query_error)?,
        name: row.try_get(3).map_err(query_error)?,
        email: row.try_get(4).map_err(query_error)?,
        phone: row.try_get(5).map_err(query_error)?,
        source: row.try_get(6).map_err(query_error)?,
        industry: row.try_get(7).map_err(query_error)?,
        score: row.try_get(8).map_err(query_error)?,
        status: LeadStatus::from_name(&status)
            .ok_or_else(|| DbErr::Type(format!("a lead's status is {status:?}")))?,
        monthly_revenue_cents: row.try_get(10).map_err(query_error)?,
        budget_cents: row.try_get(11).map_err(query_error)?,
        description: row.try_get(12).map_err(query_error)?,
        created_at: row.try_get(13).map_err(query_error)?,
        external_id: row.try_get(14).map_err(query_error)?,
        updated_at: row.try_get(15).map_err(query_error)?,
        spam_reason: row.try_get(16).map_err(query_error)?,
        spam_at: row.try_get(17).map_err(query_error)?,
        attribution: row.try_get(18).map_err(query_error)?,
        consent: row.try_get(19).map_err(query_error)?,
    })
}

/// A sqlx error as sea-orm reports a failed query (so [`ciq_store::is_outage`] reads it
/// the same).
fn query_error(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_columns_read_by_position_are_the_entitys_in_its_order() {
        use sea_orm::{IdenStatic, Iterable};
        let entity: Vec<&str> = lead::Column::iter().map(|c| c.as_str()).collect();
        assert_eq!(entity, COLUMNS);
    }
}
