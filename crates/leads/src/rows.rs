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

use crate::Lead;

/// The leads `statement` selects — every column of `leads` in the entity's order, as a
/// `lead::Entity::find()` query selects them (a column's position is its place in
/// [`lead::Column`], which is that order: a test holds the two together).
pub(crate) async fn read(db: &Db, statement: Statement, plan: Plan) -> Result<Vec<Lead>, DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        let models = lead::Entity::find().from_raw_sql(statement).all(db).await?;
        return Ok(models.into_iter().map(Lead::from).collect());
    }
    // One round trip on a kept connection; behind a transaction pooler one simple query,
    // nothing named (see `Db`): a call of the statement's function where its plan may be
    // kept (`ciq_store::planned`).
    let rows = match plan {
        Plan::Kept => db.fetch_rows_of("leads", statement).await,
        Plan::PerValues => db.fetch_all(statement).await,
    }
    .map_err(query_error)?;
    decoded(&rows)
}

/// Whether a statement's plan may be made once and kept for every call, or must be
/// made for its values (a prefix search bounds an index range only in a plan made for
/// that prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    Kept,
    PerValues,
}

/// The leads of rows sea-orm read that hold every lead column in [`read`]'s order (an
/// `UPDATE … RETURNING` of them): on PostgreSQL decoded as [`read`] decodes, elsewhere
/// by sea-orm.
pub(crate) fn leads(rows: &[sea_orm::QueryResult]) -> Result<Vec<Lead>, DbErr> {
    use sea_orm::FromQueryResult;
    match rows
        .iter()
        .map(sea_orm::QueryResult::try_as_pg_row)
        .collect::<Option<Vec<_>>>()
    {
        Some(rows) => decoded(rows),
        None => rows
            .iter()
            .map(|row| lead::Model::from_query_result(row, "").map(Lead::from))
            .collect(),
    }
}

/// PostgreSQL rows of one result as leads. Every row of one result has the same column
/// types: they are checked against the model's once, with the first row (a column whose
/// type changed fails, named), and no value's type is checked again (sqlx's check per
/// value: a tenth of a page's CPU). Each row's model becomes its lead as it is read (no
/// list of models in between).
fn decoded<'a>(
    rows: impl IntoIterator<Item = &'a sqlx::postgres::PgRow>,
) -> Result<Vec<Lead>, DbErr> {
    let rows = rows.into_iter();
    // Sized up front: a collected `Result` cannot tell its length, and each growth
    // copied every lead so far (4 % of a page's instructions, callgrind 2026-12-07).
    let mut leads = Vec::with_capacity(rows.size_hint().0);
    let mut checked = Checked::Each;
    for row in rows {
        leads.push(Lead::from(model(row, checked)?));
        checked = Checked::Once;
    }
    Ok(leads)
}

/// Whether a row's column types are checked ([`Checked::Each`]) or were, with an
/// earlier row of the same result ([`Checked::Once`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Checked {
    Each,
    Once,
}

/// A PostgreSQL row of every lead column as a lead.
fn model(row: &sqlx::postgres::PgRow, checked: Checked) -> Result<lead::Model, DbErr> {
    use lead::Column as C;
    if checked == Checked::Each {
        let columns = <C as sea_orm::Iterable>::iter().count();
        if row.len() != columns {
            return Err(DbErr::Type(format!(
                "a lead row has {} columns, not {columns}",
                row.len()
            )));
        }
    }
    let field = |column| Field(row, column, checked);
    let status: &str = field(C::Status).get()?;
    Ok(lead::Model {
        id: field(C::Id).get()?,
        user_id: field(C::UserId).get()?,
        api_key_id: field(C::ApiKeyId).get()?,
        name: field(C::Name).get()?,
        email: field(C::Email).get()?,
        phone: field(C::Phone).get()?,
        source: field(C::Source).get()?,
        industry: field(C::Industry).get()?,
        score: field(C::Score).get()?,
        status: LeadStatus::from_name(status)
            .ok_or_else(|| DbErr::Type(format!("a lead's status is {status:?}")))?,
        monthly_revenue_cents: field(C::MonthlyRevenueCents).get()?,
        budget_cents: field(C::BudgetCents).get()?,
        description: field(C::Description).get()?,
        created_at: field(C::CreatedAt).get()?,
        external_id: field(C::ExternalId).get()?,
        updated_at: field(C::UpdatedAt).get()?,
        spam_reason: field(C::SpamReason).get()?,
        spam_at: field(C::SpamAt).get()?,
        attribution: field(C::Attribution).get()?,
        consent: field(C::Consent).get()?,
    })
}

/// The value of a column in a row, found by its position, its type checked or not.
struct Field<'r>(&'r sqlx::postgres::PgRow, lead::Column, Checked);

impl<'r> Field<'r> {
    fn get<T>(self) -> Result<T, DbErr>
    where
        T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        use sea_orm::IdenStatic;
        use sqlx::{Column, TypeInfo};
        let Field(row, column, checked) = self;
        if checked == Checked::Each {
            // From the result's description, so a column NULL in this row is checked too.
            let ty = row.column(column as usize).type_info();
            if !<T as sqlx::Type<sqlx::Postgres>>::compatible(ty) {
                return Err(DbErr::Type(format!(
                    "lead column {} is of type {}, which its field cannot hold",
                    column.as_str(),
                    ty.name()
                )));
            }
        }
        row.try_get_unchecked(column as usize).map_err(query_error)
    }
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
