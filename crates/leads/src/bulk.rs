//! Upserts by external id of many rows at once (a CSV import's chunk): one `UPDATE …
//! FROM (VALUES …)` for the rows whose lead exists and one multi-row `INSERT … ON
//! CONFLICT DO NOTHING` for the rest, instead of one or two statements a row. The
//! outcome of every row is what [`crate::store::upsert_in`] would have made of it, row
//! after row: rows of one external id are applied in their order (a later one in a later
//! statement), and a row the bulk statements cannot decide (a patch that renames the
//! external id or sets what only a create takes, an empty patch, an insert that lost a
//! race) goes through `upsert_collecting` on its own.

use std::collections::{HashMap, HashSet};

use ciq_store::placeholder as place;
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult, Iterable, Statement};
use uuid::Uuid;

use ciq_entity::lead;

use crate::error::LeadError;
use crate::events::{self, EventType};
use crate::lead::{Lead, LeadOwner, row_of};
use crate::rules::{Change, LeadPatch, NewLead};
use crate::store::{Announced, Upserted, external_id_conflict, upsert_collecting};

/// Rows per multi-row statement: a lead's 20 columns keep an `INSERT` of this many
/// under SQLite's 32 766 bound parameters (PostgreSQL takes 65 535); the import's
/// `UPDATE` binds 16 a row.
pub const ROWS_PER_STATEMENT: usize = 1_000;

/// One row of [`upsert_many`]: the lead the external id names is changed as `patch`
/// says; when none has it, `new` is created (`None`: the row cannot create one).
#[derive(Debug, Clone)]
pub struct UpsertRow {
    /// The lead's external id in the account.
    pub external_id: String,
    /// What the row changes on an existing lead.
    pub patch: LeadPatch,
    /// The lead the row creates when none has the external id.
    pub new: Option<NewLead>,
}

/// What [`upsert_many`] made of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    /// No lead had the external id: the row created one.
    Created,
    /// The lead with the external id was changed.
    Updated,
    /// No lead had the external id and the row creates none: nothing was written.
    Missing,
}

/// Upserts `rows` for `owner` inside the caller's transaction `txn` (see the module);
/// each write's event (`lead.updated`, `lead.created`) joins `announced`. One outcome a
/// row, in order. An error leaves the transaction for the caller to roll back.
pub async fn upsert_many(
    txn: &impl ConnectionTrait,
    owner: LeadOwner,
    rows: Vec<UpsertRow>,
    announced: &mut Announced,
) -> Result<Vec<RowOutcome>, LeadError> {
    let mut outcomes = vec![RowOutcome::Missing; rows.len()];
    // Round r holds the r-th row of each external id: within a round the ids are
    // distinct (one statement may touch a lead once), and rounds run in order.
    let mut occurrences: HashMap<&str, usize> = HashMap::new();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let seen = occurrences.entry(row.external_id.as_str()).or_default();
        if rounds.len() <= *seen {
            rounds.push(Vec::new());
        }
        rounds[*seen].push(i);
        *seen += 1;
    }
    for round in rounds {
        let (bulk, alone): (Vec<usize>, Vec<usize>) =
            round.into_iter().partition(|&i| bulk_ready(&rows[i]));
        for i in alone {
            outcomes[i] = one(txn, owner, &rows[i], announced).await?;
        }
        for part in bulk.chunks(ROWS_PER_STATEMENT) {
            let updated = update(txn, owner.user_id, &rows, part).await?;
            let mut creating = Vec::new();
            for &i in part {
                match updated.get(rows[i].external_id.as_str()) {
                    Some(lead) => {
                        announced.extend(events::event(EventType::Updated, lead));
                        outcomes[i] = RowOutcome::Updated;
                    }
                    None if rows[i].new.is_some() => creating.push(i),
                    None => outcomes[i] = RowOutcome::Missing,
                }
            }
            let now = ciq_entity::now();
            let new_rows: Vec<(usize, lead::Model)> = creating
                .iter()
                .filter_map(|&i| {
                    let new = rows[i].new.clone()?;
                    Some((i, row_of(owner, new, now)))
                })
                .collect();
            let inserted: HashSet<Uuid> = if new_rows.is_empty() {
                HashSet::new()
            } else {
                lead::Entity::insert_many(
                    new_rows
                        .iter()
                        .map(|(_, row)| lead::ActiveModel::from(row.clone())),
                )
                .on_conflict(external_id_conflict())
                .exec_with_returning_keys(txn)
                .await?
                .into_iter()
                .collect()
            };
            for (i, row) in new_rows {
                if inserted.contains(&row.id) {
                    announced.extend(events::event(EventType::Created, &Lead::from(row)));
                    outcomes[i] = RowOutcome::Created;
                } else {
                    // Its external id was taken meanwhile (a concurrent write): the
                    // row on its own updates that lead.
                    outcomes[i] = one(txn, owner, &rows[i], announced).await?;
                }
            }
        }
    }
    Ok(outcomes)
}

/// Whether the bulk statements decide `row` exactly as the row on its own would: a
/// patch that writes something, keeps the external id it is found by, and carries
/// nothing only a create takes.
fn bulk_ready(row: &UpsertRow) -> bool {
    let patch = &row.patch;
    let keeps_id = match &patch.external_id {
        Change::Keep => true,
        Change::Set(id) => *id == row.external_id,
        Change::Clear => false,
    };
    keeps_id && patch.creates_only.is_none() && !patch.clone().columns().is_empty()
}

/// `row` on its own (`upsert_collecting`), as an outcome.
async fn one(
    txn: &impl ConnectionTrait,
    owner: LeadOwner,
    row: &UpsertRow,
    announced: &mut Announced,
) -> Result<RowOutcome, LeadError> {
    let upserted = upsert_collecting(
        txn,
        owner,
        &row.external_id,
        row.patch.clone(),
        row.new.as_ref(),
        announced,
    )
    .await?;
    Ok(match upserted {
        Some(Upserted::Created(_)) => RowOutcome::Created,
        Some(Upserted::Updated(_)) => RowOutcome::Updated,
        None => RowOutcome::Missing,
    })
}

/// The columns of the `VALUES` list, after the external id: what each patchable column
/// becomes. A column that cannot be emptied is `COALESCE`d (null: kept); one that can
/// carries a flag (`s_…`: the patch writes it, perhaps null) before its value.
const REQUIRED: [(&str, &str); 5] = [
    ("name", "v_name"),
    ("email", "v_email"),
    ("source", "v_source"),
    ("industry", "v_industry"),
    ("status", "v_status"),
];
const OPTIONAL: [(&str, &str, &str); 5] = [
    ("phone", "s_phone", "v_phone"),
    ("score", "s_score", "v_score"),
    ("monthly_revenue_cents", "s_revenue", "v_revenue"),
    ("budget_cents", "s_budget", "v_budget"),
    ("description", "s_description", "v_description"),
];

/// Applies the patches of `rows[part]` (distinct external ids) to the leads of
/// `user_id`'s account that have them, in one statement; the leads as changed, by
/// external id (a row with no lead is absent).
async fn update(
    txn: &impl ConnectionTrait,
    user_id: Uuid,
    rows: &[UpsertRow],
    part: &[usize],
) -> Result<HashMap<String, Lead>, LeadError> {
    let backend = txn.get_database_backend();
    let mut values: Vec<sea_orm::Value> = vec![user_id.into(), ciq_entity::now().into()];
    let mut tuples = Vec::with_capacity(part.len());
    for &i in part {
        let row = &rows[i];
        let p = &row.patch;
        fn flagged<T: Into<sea_orm::Value>>(
            change: Change<T>,
            values: &mut Vec<sea_orm::Value>,
            none: sea_orm::Value,
        ) {
            match change {
                Change::Keep => {
                    values.push(false.into());
                    values.push(none);
                }
                Change::Clear => {
                    values.push(true.into());
                    values.push(none);
                }
                Change::Set(v) => {
                    values.push(true.into());
                    values.push(v.into());
                }
            }
        }
        let first = values.len() + 1;
        values.push(row.external_id.clone().into());
        values.push(p.name.clone().into());
        values.push(p.email.clone().into());
        values.push(p.source.clone().into());
        values.push(p.industry.clone().into());
        values.push(p.status.map(|s| s.as_str().to_owned()).into());
        flagged(p.phone.clone(), &mut values, Option::<String>::None.into());
        flagged(p.score.clone(), &mut values, Option::<i32>::None.into());
        flagged(
            p.monthly_revenue.clone().map_cents(),
            &mut values,
            Option::<i64>::None.into(),
        );
        flagged(
            p.budget.clone().map_cents(),
            &mut values,
            Option::<i64>::None.into(),
        );
        flagged(
            p.description.clone(),
            &mut values,
            Option::<String>::None.into(),
        );
        let places: Vec<String> = (first..values.len() + 1)
            .map(|n| place(backend, n))
            .collect();
        tuples.push(format!("({})", places.join(", ")));
    }
    let names: Vec<&str> = std::iter::once("k")
        .chain(REQUIRED.iter().map(|(_, v)| *v))
        .chain(OPTIONAL.iter().flat_map(|(_, s, v)| [*s, *v]))
        .collect();
    let sets: Vec<String> = REQUIRED
        .iter()
        .map(|(column, v)| format!("{column} = COALESCE(v.{v}, leads.{column})"))
        .chain(OPTIONAL.iter().map(|(column, s, v)| {
            format!("{column} = CASE WHEN v.{s} THEN v.{v} ELSE leads.{column} END")
        }))
        .collect();
    let returned: Vec<String> = lead::Column::iter()
        .map(|c| sea_orm::IdenStatic::as_str(&c).to_owned())
        .collect();
    // PostgreSQL joins the list to the account's leads as it costs it: a hash join
    // over the account's rows while that is cheaper than a look-up per row through
    // the external-id index. (Naming the keys again in an `IN` list made a generic
    // plan built on a nearly empty table's statistics filter the whole account by
    // the list, row by row: 10x slower than this as the import grew it.)
    let sql = format!(
        "WITH v ({names}) AS (VALUES {tuples}) \
         UPDATE leads SET {sets}, updated_at = {now} FROM v \
         WHERE leads.user_id = {user} AND leads.external_id = v.k \
         RETURNING {returned}",
        names = names.join(", "),
        tuples = tuples.join(", "),
        sets = sets.join(", "),
        now = place(backend, 2),
        user = place(backend, 1),
        returned = returned.join(", "),
    );
    let changed = txn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let mut leads = HashMap::with_capacity(changed.len());
    for row in &changed {
        let model = lead::Model::from_query_result(row, "")?;
        let lead = Lead::from(model);
        leads.insert(lead.external_id.clone().unwrap_or_default(), lead);
    }
    Ok(leads)
}
