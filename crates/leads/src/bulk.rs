//! Upserts by external id of many rows at once (a CSV import's chunk): one `UPDATE … FROM
//! unnest(…)` (SQLite: `FROM (VALUES …)`) for the rows whose lead exists and one multi-row
//! `INSERT … ON CONFLICT DO NOTHING` for the rest, instead of one or two statements a row.
//! The outcome of every row is what [`crate::store::upsert_in`] would have made of it, row
//! after row: rows of one external id are applied in their order (a later one in a later
//! statement), and a row the bulk statements cannot decide (a patch that renames the
//! external id or sets what only a create takes, an empty patch, an insert that lost a
//! race) goes through `upsert_collecting` on its own.

use std::collections::{HashMap, HashSet};

use ciq_store::placeholder as place;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Iterable, Statement, Value};
use uuid::Uuid;

use ciq_entity::lead;

use crate::error::LeadError;
use crate::events::{EventType, LeadEvent};
use crate::lead::{Lead, LeadOwner, row_of};
use crate::rules::{Change, LeadPatch, NewLead};
use crate::store::{Announced, Upserted, insert_statement, upsert_collecting};

/// Rows per statement: a lead's 20 columns keep an `INSERT` of this many under SQLite's
/// 32 766 bound parameters (the import's `UPDATE` binds 16 a row there); on PostgreSQL
/// each column goes as one array ([`crate::arrays`]) whatever the number of rows.
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
            let mut updated = update(txn, owner.user_id, &rows, part).await?;
            let mut creating = Vec::new();
            for &i in part {
                match updated.remove(rows[i].external_id.as_str()) {
                    Some(lead) => {
                        announced.extend(LeadEvent::of(EventType::Updated, lead));
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
                let models: Vec<&lead::Model> = new_rows.iter().map(|(_, row)| row).collect();
                let statement = insert_statement(txn.get_database_backend(), &models, true);
                txn.query_all_raw(statement)
                    .await?
                    .iter()
                    .map(|row| row.try_get::<Uuid>("", "id"))
                    .collect::<Result<_, DbErr>>()?
            };
            for (i, row) in new_rows {
                if inserted.contains(&row.id) {
                    announced.extend(LeadEvent::of(EventType::Created, Lead::from(row)));
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

/// What `row` writes, as the `VALUES` list's or the arrays' columns (see [`REQUIRED`] and
/// [`OPTIONAL`]): the external id, each required column's new value (null: kept), and
/// each optional column's flag (the patch writes it) and value.
fn patch_values(row: &UpsertRow) -> Vec<Value> {
    fn flagged<T: Into<Value>>(change: Change<T>, values: &mut Vec<Value>, none: Value) {
        match change {
            Change::Keep => values.extend([false.into(), none]),
            Change::Clear => values.extend([true.into(), none]),
            Change::Set(v) => values.extend([true.into(), v.into()]),
        }
    }
    let p = &row.patch;
    let mut values: Vec<Value> = vec![
        row.external_id.clone().into(),
        p.name.clone().into(),
        p.email.clone().into(),
        p.source.clone().into(),
        p.industry.clone().into(),
        p.status.map(|s| s.as_str().to_owned()).into(),
    ];
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
    values
}

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
    let patches: Vec<Vec<Value>> = part.iter().map(|&i| patch_values(&rows[i])).collect();
    let names: Vec<&str> = std::iter::once("k")
        .chain(REQUIRED.iter().map(|(_, v)| *v))
        .chain(OPTIONAL.iter().flat_map(|(_, s, v)| [*s, *v]))
        .collect();
    let mut values: Vec<Value> = vec![user_id.into(), ciq_entity::now().into()];
    // PostgreSQL: the rows as column arrays ([`crate::arrays`]), each row's lead found
    // by the external-id index (below); SQLite: a `VALUES` list joined on the account
    // and the external id (its planner takes the unique index).
    let arrays = match backend {
        DbBackend::Postgres => crate::arrays::Columns::of(&patches)
            .map(|columns| (columns.unnest(3), columns.values())),
        _ => None,
    };
    let user = place(backend, 1);
    let (with, found) = match arrays {
        Some((unnest, arrays)) => {
            values.extend(arrays);
            // Each row's lead is found by a probe of the external-id index (`LIMIT 1`:
            // a subplan, never flattened into a join) and updated by its tuple id, the
            // ids also given as one array so that the table is read by tuple id
            // whatever the plan. Joined on `user_id` and `external_id`, the plan
            // followed the statistics, stale in a table the import itself fills (an
            // account "of 17 leads with an external id" that holds 45 000): a merge or
            // hash join over the account or the table, a chunk's cost growing with it
            // (docs/performance.md, "CSV import"). The account is in the probe: the
            // update changes the very rows the probe found, in the statement's snapshot.
            (
                format!(
                    "WITH v AS MATERIALIZED (SELECT u.*, (SELECT l.ctid FROM leads l \
                     WHERE l.user_id = {user} AND l.external_id = u.k LIMIT 1) AS t \
                     FROM {unnest} AS u ({})) ",
                    names.join(", ")
                ),
                "leads.ctid = ANY (ARRAY(SELECT v.t FROM v WHERE v.t IS NOT NULL)) \
                 AND leads.ctid = v.t"
                    .to_owned(),
            )
        }
        None => {
            let mut tuples = Vec::with_capacity(patches.len());
            for row in patches {
                let first = values.len() + 1;
                values.extend(row);
                let places: Vec<String> = (first..values.len() + 1)
                    .map(|n| place(backend, n))
                    .collect();
                tuples.push(format!("({})", places.join(", ")));
            }
            // A CTE names the list's columns (SQLite has no column aliases after `AS`).
            let with = format!(
                "WITH v ({}) AS (VALUES {}) ",
                names.join(", "),
                tuples.join(", ")
            );
            (
                with,
                format!("leads.user_id = {user} AND leads.external_id = v.k"),
            )
        }
    };
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
    let sql = format!(
        "{with}UPDATE leads SET {sets}, updated_at = {now} FROM v \
         WHERE {found} RETURNING {returned}",
        sets = sets.join(", "),
        now = place(backend, 2),
        returned = returned.join(", "),
    );
    let changed = txn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let mut leads = HashMap::with_capacity(changed.len());
    for lead in crate::rows::leads(&changed)? {
        leads.insert(lead.external_id.clone().unwrap_or_default(), lead);
    }
    Ok(leads)
}
