//! Reading many leads at once: a page of a list.
//!
//! sea-orm turns a row into a model column by column *by name* (a hash lookup of the
//! name in the row's columns, a type check, and for every NULL an error value with the
//! column's name formatted into it, which the `Option` then discards). For a page of 50
//! leads of 20 columns that was a third of the gateway's CPU per page (perf, dwarf call
//! graphs, 2026-12-06). On PostgreSQL [`read`] runs the statement through sqlx itself
//! and decodes each row by position (binary rows, or text rows from the simple query a
//! transaction pooler gets); on SQLite it is sea-orm's reading.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement};
use sqlx::Row;

use ciq_entity::lead::{self, LeadStatus};
use ciq_store::Db;
use ciq_store::db::query_error;

/// The leads `statement` selects — every column of `leads` in the entity's order, as a
/// `lead::Entity::find()` query selects them (a column's position is its place in
/// [`lead::Column`], which is that order: a test holds the two together).
pub(crate) async fn read(db: &Db, statement: Statement) -> Result<Vec<lead::Model>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return lead::Entity::find().from_raw_sql(statement).all(db).await;
    }
    // One round trip on a kept connection; behind a transaction pooler one simple query,
    // nothing named (see `Db`).
    let rows = db.fetch_all(statement).await.map_err(query_error)?;
    rows.iter().map(model).collect()
}

/// A PostgreSQL row of every lead column as a lead.
fn model(row: &sqlx::postgres::PgRow) -> Result<lead::Model, DbErr> {
    use lead::Column as C;
    let columns = <C as sea_orm::Iterable>::iter().count();
    if row.len() != columns {
        return Err(DbErr::Type(format!(
            "a lead row has {} columns, not {columns}",
            row.len()
        )));
    }
    let status: String = field(row, C::Status)?;
    Ok(lead::Model {
        id: field(row, C::Id)?,
        user_id: field(row, C::UserId)?,
        api_key_id: field(row, C::ApiKeyId)?,
        name: field(row, C::Name)?,
        email: field(row, C::Email)?,
        phone: field(row, C::Phone)?,
        source: field(row, C::Source)?,
        industry: field(row, C::Industry)?,
        score: field(row, C::Score)?,
        status: LeadStatus::from_name(&status)
            .ok_or_else(|| DbErr::Type(format!("a lead's status is {status:?}")))?,
        monthly_revenue_cents: field(row, C::MonthlyRevenueCents)?,
        budget_cents: field(row, C::BudgetCents)?,
        description: field(row, C::Description)?,
        created_at: field(row, C::CreatedAt)?,
        external_id: field(row, C::ExternalId)?,
        updated_at: field(row, C::UpdatedAt)?,
        spam_reason: field(row, C::SpamReason)?,
        spam_at: field(row, C::SpamAt)?,
        attribution: field(row, C::Attribution)?,
        consent: field(row, C::Consent)?,
    })
}

/// The value of `column` in `row`, found by its position.
fn field<'r, T>(row: &'r sqlx::postgres::PgRow, column: lead::Column) -> Result<T, DbErr>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column as usize).map_err(query_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `read` relies on: a query of the entity selects its columns in the order of
    /// [`lead::Column`]'s variants.
    #[test]
    fn a_lead_query_selects_each_column_at_its_variants_position() {
        use sea_orm::{IdenStatic, Iterable, QueryTrait};
        let sql = lead::Entity::find().build(DbBackend::Postgres).sql;
        let selected: Vec<&str> = sql["SELECT ".len()..sql.find(" FROM").unwrap()]
            .split(", ")
            .collect();
        assert_eq!(selected.len(), lead::Column::iter().count());
        for column in lead::Column::iter() {
            assert_eq!(
                selected[column as usize],
                format!(r#""leads"."{}""#, column.as_str()),
            );
        }
    }
}
