//! Writing leads under the key owner's account.

use chrono::{DateTime, Utc};
use ciq_entity::AccountScoped;
use ciq_store::Db;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, SqlErr,
    TransactionError, TransactionTrait,
};
use uuid::Uuid;

use ciq_entity::lead::{self, LeadStatus};

use crate::error::LeadError;
use crate::events::{self, EventType, LeadEvent};
use crate::group_commit::{Announcement, LeadWriter};
use crate::idempotency;
use crate::lead::{Lead, row_of};
use crate::rules::NewLead;
use ciq_webhooks::outbox;

pub use crate::lead::LeadOwner;

/// An idempotent create: its key, and how to render the answer that a retry with the
/// same key replays (the surface's own JSON, remembered as it was sent).
pub struct Remembered<'a> {
    /// The validated `Idempotency-Key`.
    pub key: &'a str,
    /// Renders the answer body for the stored lead.
    pub render: &'a (dyn Fn(&Lead) -> String + Sync),
}

/// `ON CONFLICT` on the account's external ids — the target of the partial unique
/// index `idx_leads_user_external_id_set` (only leads that have one) — skipping the row.
pub(crate) fn external_id_conflict() -> sea_orm::sea_query::OnConflict {
    sea_orm::sea_query::OnConflict::columns([lead::Column::UserId, lead::Column::ExternalId])
        .target_and_where(lead::Column::ExternalId.is_not_null())
        .do_nothing()
        .to_owned()
}

/// The statement inserting `rows` (a row whose external id the account already holds
/// skipped, as [`external_id_conflict`] says), answering the ids written when
/// `returning_ids`. On PostgreSQL the rows go as one array per column
/// ([`crate::arrays`]): one statement text whatever their number, planned once per
/// connection; elsewhere (SQLite), and for a value without an array form, as a
/// multi-row `VALUES`. `rows` must not be empty.
pub(crate) fn insert_statement(
    backend: sea_orm::DbBackend,
    rows: &[&lead::Model],
    returning_ids: bool,
) -> sea_orm::Statement {
    use sea_orm::{Iterable, ModelTrait, QueryTrait};
    let returning = if returning_ids { " RETURNING id" } else { "" };
    if backend == sea_orm::DbBackend::Postgres {
        let columns = crate::arrays::Columns::of(
            rows.iter()
                .map(|row| lead::Column::iter().map(|column| row.get(column))),
        );
        if let Some(columns) = columns {
            let unnest = columns.unnest(1);
            let names: Vec<&str> = lead::Column::iter()
                .map(|c| sea_orm::IdenStatic::as_str(&c))
                .collect();
            let sql = format!(
                "INSERT INTO leads ({}) SELECT * FROM {unnest} \
                 ON CONFLICT (user_id, external_id) WHERE external_id IS NOT NULL \
                 DO NOTHING{returning}",
                names.join(", ")
            );
            return sea_orm::Statement::from_sql_and_values(backend, sql, columns.values());
        }
    }
    let mut insert =
        lead::Entity::insert_many(rows.iter().map(|&row| lead::ActiveModel::from(row.clone())))
            .on_conflict(external_id_conflict());
    if returning_ids {
        QueryTrait::query(&mut insert).returning_col(lead::Column::Id);
    }
    QueryTrait::build(&insert, backend)
}

/// What became of one item of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// It broke the field rules (the caller knows which); nothing was written for it.
    Refused,
    /// Stored.
    Created(Box<Lead>),
    /// Its `external_id` is taken in the account, by this lead (stored before, or by
    /// an earlier item of the same batch).
    Duplicate(Uuid),
}

/// A batch's answer to remember with its leads: the key, and how to render the answer's
/// items (a JSON array, one element per item, in order) from the outcomes.
pub struct RememberedBatch<'a> {
    /// The validated `Idempotency-Key`.
    pub key: &'a str,
    /// Renders the items of the answer.
    pub render: &'a (dyn Fn(&[BatchOutcome]) -> String + Sync),
}

/// Stores the items of a batch for `owner`, each on its own: `None` items broke the
/// rules and are [`BatchOutcome::Refused`]. Every row goes in one statement, in one
/// transaction (with the remembered answer, if any). Within the batch the first item
/// with an `external_id` wins; an `external_id` already in the account (also one
/// committed by a concurrent request meanwhile) makes its item a
/// [`BatchOutcome::Duplicate`] naming the lead that holds it. Nothing else fails one
/// item without the others: an outage fails the whole batch, and nothing is written.
pub async fn insert_batch(
    db: &Db,
    writer: &LeadWriter,
    owner: LeadOwner,
    items: Vec<Option<NewLead>>,
    remembered: Option<RememberedBatch<'_>>,
) -> Result<Vec<BatchOutcome>, LeadError> {
    let now = ciq_entity::now();
    // Each item's outcome; `None` for a row to store, answered from its row once the
    // statement that takes it is known.
    let mut outcomes: Vec<Option<BatchOutcome>> = Vec::with_capacity(items.len());
    let mut rows: Vec<(usize, lead::Model)> = Vec::with_capacity(items.len());
    let mut first_with: std::collections::HashMap<String, Uuid> = Default::default();
    for (index, item) in items.into_iter().enumerate() {
        let Some(new) = item else {
            outcomes.push(Some(BatchOutcome::Refused));
            continue;
        };
        let row = row_of(owner, new, now);
        if let Some(external_id) = &row.external_id {
            if let Some(first) = first_with.get(external_id) {
                outcomes.push(Some(BatchOutcome::Duplicate(*first)));
                continue;
            }
            first_with.insert(external_id.clone(), row.id);
        }
        outcomes.push(None);
        rows.push((index, row));
    }
    // Fills the rows' outcomes in order, each answered as `created` by `lead`.
    fn answered(
        outcomes: Vec<Option<BatchOutcome>>,
        mut leads: impl Iterator<Item = Lead>,
    ) -> Vec<BatchOutcome> {
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| {
                    BatchOutcome::Created(Box::new(
                        leads.next().expect("a row per outcome left open"),
                    ))
                })
            })
            .collect()
    }
    // The common batch — no external id to look after, no answer to remember, no
    // spam — goes as group commit's statement, its rows then moved into the answer;
    // the rest in a transaction of its own.
    let plain = remembered.is_none()
        && rows
            .iter()
            .all(|(_, row)| row.external_id.is_none() && row.spam_reason.is_none());
    if plain {
        let models: Vec<&lead::Model> = rows.iter().map(|(_, row)| row).collect();
        writer.write_all(db, &models).await?;
        metrics::counter!("ciq_leads_created_total").increment(models.len() as u64);
        return Ok(answered(
            outcomes,
            rows.into_iter().map(|(_, row)| Lead::from(row)),
        ));
    }
    let outcomes = answered(
        outcomes,
        rows.iter().map(|(_, row)| Lead::from(row.clone())),
    );
    let breaker = writer.breaker();
    let written = breaker
        .guard(write_batch(db, owner.user_id, &rows, outcomes, remembered))
        .await?;
    breaker.record(&written);
    let outcomes = written.map_err(LeadError::from)??;
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, BatchOutcome::Created(_)))
        .count();
    metrics::counter!("ciq_leads_created_total").increment(created as u64);
    Ok(outcomes)
}

/// The transaction of [`insert_batch`]: the rows (conflicting external ids skipped),
/// then which of them the account already held, then the remembered answer.
async fn write_batch(
    db: &Db,
    user_id: Uuid,
    rows: &[(usize, lead::Model)],
    mut outcomes: Vec<BatchOutcome>,
    remembered: Option<RememberedBatch<'_>>,
) -> Result<Result<Vec<BatchOutcome>, LeadError>, DbErr> {
    use sea_orm::{QuerySelect, TransactionTrait};
    let txn = db.begin().await?;
    if !rows.is_empty() {
        let models: Vec<&lead::Model> = rows.iter().map(|(_, row)| row).collect();
        txn.execute_raw(insert_statement(txn.get_database_backend(), &models, false))
            .await?;
        let external_ids: Vec<&str> = rows
            .iter()
            .filter_map(|(_, row)| row.external_id.as_deref())
            .collect();
        if !external_ids.is_empty() {
            let holders: std::collections::HashMap<String, Uuid> =
                lead::Entity::in_account(user_id)
                    .select_only()
                    .column(lead::Column::ExternalId)
                    .column(lead::Column::Id)
                    .filter(lead::Column::ExternalId.is_in(external_ids))
                    .into_tuple::<(String, Uuid)>()
                    .all(&txn)
                    .await?
                    .into_iter()
                    .collect();
            // A row skipped for its external id: its item, and the later items that
            // pointed at it, name the lead that holds the id.
            let mut moved = std::collections::HashMap::new();
            for (index, row) in rows {
                let Some(external_id) = &row.external_id else {
                    continue;
                };
                match holders.get(external_id) {
                    Some(holder) if *holder == row.id => {}
                    Some(holder) => {
                        outcomes[*index] = BatchOutcome::Duplicate(*holder);
                        moved.insert(row.id, *holder);
                    }
                    // Skipped for a lead that was erased before this statement looked:
                    // nothing of the batch is written; the client's retry will succeed.
                    None => {
                        return Ok(Err(LeadError::Unavailable(
                            "a lead holding one of these external ids was just erased; retry"
                                .into(),
                        )));
                    }
                }
            }
            for outcome in &mut outcomes {
                if let BatchOutcome::Duplicate(first) = outcome
                    && let Some(holder) = moved.get(first)
                {
                    *first = *holder;
                }
            }
        }
    }
    let created: Vec<LeadEvent<&Lead>> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            BatchOutcome::Created(lead) => LeadEvent::of(EventType::Created, &**lead),
            _ => None,
        })
        .collect();
    outbox::fan_out(&txn, &created).await?;
    if let Some(remembered) = remembered {
        let held: Vec<(usize, Uuid)> = outcomes
            .iter()
            .enumerate()
            .filter_map(|(index, outcome)| match outcome {
                BatchOutcome::Created(lead) => Some((index, lead.id)),
                _ => None,
            })
            .collect();
        let items = (remembered.render)(&outcomes);
        idempotency::complete_batch(&txn, user_id, remembered.key, &items, &held).await?;
    }
    txn.commit().await?;
    Ok(Ok(outcomes))
}

/// The row `new` will be stored as for `owner`, built now: its id and `created_at` are
/// final before it is written (a create the store could not take is spooled as this
/// same row, so it is never stored twice).
pub fn prepare(owner: LeadOwner, new: NewLead) -> lead::Model {
    row_of(owner, new, ciq_entity::now())
}

/// Stores `model` (made by [`prepare`]).
///
/// With an idempotency key, the answer is remembered in the same transaction as the
/// lead: both are written or neither is. Without one, the row goes through group
/// commit (`announcement` is this request's, if it announced itself).
pub async fn insert_lead(
    db: &Db,
    writer: &LeadWriter,
    model: lead::Model,
    remembered: Option<Remembered<'_>>,
    announcement: Option<&Announcement>,
) -> Result<Lead, LeadError> {
    let stored = match remembered {
        // The common case goes through group commit; a lead with an external id is
        // written on its own, so that a duplicate is told apart from an outage, and so
        // is spam (rare; a batch's statement carries no spam columns).
        None if model.external_id.is_none() && model.spam_reason.is_none() => writer
            .write(model, announcement)
            .await
            .map(Lead::from)
            .map_err(LeadError::Unavailable),
        remembered => {
            // Written in its own transaction, not through a batch.
            if let Some(announcement) = announcement {
                announcement.settle();
            }
            let user_id = model.user_id;
            let lead_id = model.id;
            let external_id = model.external_id.clone();
            // The row is written exactly as built, so its answer can be rendered now.
            let answer =
                remembered.map(|r| (r.key.to_owned(), (r.render)(&Lead::from(model.clone()))));
            let row: lead::ActiveModel = model.into();
            let written = writer
                .breaker()
                .guard(db.transaction::<_, Lead, DbErr>(|txn| {
                    Box::pin(async move {
                        let lead = Lead::from(row.insert(txn).await?);
                        outbox::fan_out(txn, events::event(EventType::Created, &lead).as_slice())
                            .await?;
                        if let Some((key, answer)) = answer {
                            idempotency::complete(txn, user_id, &key, 201, &answer, lead_id)
                                .await?;
                        }
                        Ok(lead)
                    })
                }))
                .await?
                .map_err(|err| match err {
                    TransactionError::Connection(err) | TransactionError::Transaction(err) => err,
                });
            writer.breaker().record(&written);
            match written {
                Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    match external_id {
                        // Boxed: rare, and its state would ride along in every create.
                        Some(external_id) => {
                            Err(Box::pin(duplicate(db, user_id, &external_id)).await)
                        }
                        None => Err(LeadError::from(err)),
                    }
                }
                other => other.map_err(LeadError::from),
            }
        }
    }?;
    metrics::counter!("ciq_leads_created_total").increment(1);
    Ok(stored)
}

/// The error for a lead refused because `external_id` is taken in the account: names
/// the lead that has it.
async fn duplicate(
    db: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
    external_id: &str,
) -> LeadError {
    let existing = lead::Entity::in_account(user_id)
        .filter(lead::Column::ExternalId.eq(external_id))
        .one(db)
        .await;
    match existing {
        Ok(Some(existing)) => LeadError::DuplicateLead(existing.id),
        // Erased meanwhile: the client's retry will find the id free.
        Ok(None) => {
            LeadError::Unavailable("the lead holding this external_id was just erased".into())
        }
        Err(err) => LeadError::from(err),
    }
}

/// The lead `id` of `user_id`'s account. Another account's lead is
/// [`LeadError::NotFound`] exactly like a missing one: the account is in the query.
pub async fn find(
    db: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
    id: Uuid,
) -> Result<Lead, LeadError> {
    lead::Entity::find_in_account(user_id, id)
        .one(db)
        .await?
        .map(Lead::from)
        .ok_or(LeadError::NotFound)
}

/// What a listing is narrowed to; every filter is an exact match (email ignoring case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFilter {
    /// Only leads in this pipeline status.
    pub status: Option<LeadStatus>,
    /// Only leads whose source is exactly this.
    pub source: Option<String>,
    /// Email, any case.
    pub email: Option<String>,
    /// The client's id.
    pub external_id: Option<String>,
    /// Only leads created at or after this moment.
    pub created_after: Option<DateTime<Utc>>,
    /// Only leads created strictly before this moment.
    pub created_before: Option<DateTime<Utc>>,
    /// Created with this key.
    pub api_key_id: Option<Uuid>,
    /// Only leads created with no key: those the owner imported from a CSV file.
    pub imported: bool,
    /// Compare `source` ignoring case (Settings' filter; the API's is exact).
    pub source_any_case: bool,
    /// Only spam leads (`true`), or only normal ones (`false`, the default: spam is
    /// out of every list unless asked for).
    pub spam: bool,
    /// Only leads whose attribution's `utm_source` is this, any case.
    pub utm_source: Option<String>,
    /// Only leads whose attribution's `utm_campaign` is this, any case.
    pub utm_campaign: Option<String>,
    /// Only leads whose name or email starts with this, any case (Settings' search;
    /// served by the `(user_id, lower(name))` and `(user_id, lower(email))` indexes).
    pub search: Option<String>,
}

/// The condition "the name or the email starts with `prefix`, any case", as ranges on
/// `lower(column)` that the account's expression indexes serve on both backends: bytes
/// compared (PostgreSQL's pattern operators, SQLite's BINARY collation), so the prefix
/// needs no escaping and no collation can reorder it. SQLite's `lower` folds ASCII
/// letters only, so the prefix is folded the same way there.
fn starts_with(db: &Db, prefix: &str) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::{BinOper, Expr, ExprTrait, Func};
    let postgres = db.connection().get_database_backend() == sea_orm::DatabaseBackend::Postgres;
    let low = if postgres {
        prefix.to_lowercase()
    } else {
        prefix.to_ascii_lowercase()
    };
    // Every text that starts with `low` sorts before `low` + the last code point.
    let high = format!("{low}\u{10FFFF}");
    let (at_least, below) = if postgres {
        (BinOper::Custom("~>=~"), BinOper::Custom("~<~"))
    } else {
        (BinOper::GreaterThanOrEqual, BinOper::SmallerThan)
    };
    let range = |column: lead::Column| {
        let folded = || Expr::expr(Func::lower(Expr::col(column)));
        folded()
            .binary(at_least, low.clone())
            .and(folded().binary(below, high.clone()))
    };
    range(lead::Column::Name).or(range(lead::Column::Email))
}

/// The condition "the attribution's `part` is `value`, any case", as `db`'s dialect
/// reads JSON text (the form the `utm_source` index is made on).
fn attribution_is(db: &Db, part: &str, value: &str) -> sea_orm::Condition {
    use sea_orm::sea_query::{Expr, ExprTrait, Func};
    let read = match db.connection().get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => format!("attribution::jsonb ->> '{part}'"),
        _ => format!("json_extract(attribution, '$.{part}')"),
    };
    sea_orm::Condition::all()
        .add(lead::Column::Attribution.is_not_null())
        .add(Expr::expr(Func::lower(Expr::cust(read))).eq(value.to_lowercase()))
}

/// Where a page starts: just after this lead in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After {
    /// The last listed lead's creation time.
    pub created_at: DateTime<Utc>,
    /// The last listed lead's id (ties on the time are broken by it).
    pub id: Uuid,
}

impl After {
    /// As an opaque, URL-safe cursor (base64url of `<unix ms>.<id>`): what clients pass
    /// back to get the next page.
    pub fn to_cursor(self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            "{}.{}",
            self.created_at.timestamp_millis(),
            self.id
        ))
    }

    /// The position a cursor names, if it is one of ours.
    pub fn from_cursor(cursor: &str) -> Option<Self> {
        use base64::Engine;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()?;
        let text = String::from_utf8(text).ok()?;
        let (millis, id) = text.split_once('.')?;
        Some(Self {
            created_at: DateTime::<Utc>::from_timestamp_millis(millis.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }

    /// The position just after `lead`.
    pub fn lead(lead: &Lead) -> Self {
        Self {
            created_at: lead.created_at,
            id: lead.id,
        }
    }
}

/// One page of `user_id`'s leads, newest first (`created_at`, then `id`, both
/// descending: the keyset of index `idx_leads_user_created_id`), after `after`, at
/// most `limit`; and whether more follow.
pub async fn list(
    db: &Db,
    user_id: Uuid,
    filter: &LeadFilter,
    after: Option<After>,
    limit: u64,
) -> Result<(Vec<Lead>, bool), LeadError> {
    let statement = list_statement(db, user_id, filter, after, limit + 1);
    let plan = list_plan(filter);
    let mut leads = crate::rows::read(db, statement, plan).await?;
    let more = leads.len() as u64 > limit;
    leads.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((leads, more))
}

/// The statement a [`list`] page of at most `limit` leads runs (tests read its plan):
/// [`list_query`] with its `LIMIT` in the text ([`ciq_store::literal_limit`]), so
/// PostgreSQL reuses one plan instead of planning every page — except for a search,
/// whose prefix can bound an index range only in a plan made for that prefix.
///
/// On PostgreSQL the text of a page without a search is made by sea-query once per
/// [`ListShape`] and kept ([`LIST_TEXTS`]); each page then only lists its values
/// ([`list_values`]). Building the query and writing its text was a quarter of the
/// gateway's CPU in a list operation (perf, 2026-12-07). A shape's text is kept only
/// when the values listed for it are the ones sea-query wrote for that same page, so
/// a listing that went out of step with [`list_query`] never serves a page.
pub fn list_statement(
    db: &Db,
    user_id: Uuid,
    filter: &LeadFilter,
    after: Option<After>,
    limit: u64,
) -> sea_orm::Statement {
    let backend = db.connection().get_database_backend();
    let per_values = list_plan(filter) == crate::rows::Plan::PerValues;
    let kept = (backend == sea_orm::DatabaseBackend::Postgres && !per_values).then(|| {
        (
            ListShape::of(filter, after.is_some(), limit),
            list_values(user_id, filter, after),
        )
    });
    if let Some((shape, values)) = &kept
        && let Some(text) = LIST_TEXTS.text(shape)
    {
        return sea_orm::Statement::from_sql_and_values(backend, text.as_str(), values.clone());
    }
    let query = list_query(db, user_id, filter, after, limit);
    if per_values {
        return sea_orm::QueryTrait::build(&query, backend);
    }
    let statement = ciq_store::literal_limit(backend, &query);
    if let Some((shape, values)) = kept {
        let same = statement
            .values
            .as_ref()
            .is_some_and(|made| made.0 == values);
        debug_assert!(
            same,
            "list_values is out of step with list_query: {}",
            statement.sql
        );
        if same {
            LIST_TEXTS.keep(shape, &statement.sql);
        }
    }
    statement
}

/// A list page's plan: made for its values when it searches by prefix (the prefix
/// bounds an index range only in a plan made for it), kept otherwise.
fn list_plan(filter: &LeadFilter) -> crate::rows::Plan {
    if filter.search.is_some() {
        crate::rows::Plan::PerValues
    } else {
        crate::rows::Plan::Kept
    }
}

/// What of a list page's statement text a request decides (PostgreSQL, no search):
/// which conditions it has, whether it starts after a cursor, and its `LIMIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ListShape {
    /// One bit per optional condition of [`matching`], in its order, and the flags.
    conditions: u16,
    after: bool,
    limit: u64,
}

impl ListShape {
    fn of(filter: &LeadFilter, after: bool, limit: u64) -> Self {
        let bits = [
            filter.spam,
            filter.status.is_some(),
            filter.source.is_some(),
            filter.source.is_some() && filter.source_any_case,
            filter.imported,
            filter.email.is_some(),
            filter.external_id.is_some(),
            filter.api_key_id.is_some(),
            filter.utm_source.is_some(),
            filter.utm_campaign.is_some(),
            filter.created_after.is_some(),
            filter.created_before.is_some(),
        ];
        Self {
            conditions: bits
                .iter()
                .enumerate()
                .fold(0, |acc, (i, &bit)| acc | (u16::from(bit) << i)),
            after,
            limit,
        }
    }
}

/// The values of a list page's statement in the order [`list_query`] writes them (the
/// account, then each filter's as [`matching`] adds it, then the cursor's): what a kept
/// text of its [`ListShape`] is sent with.
fn list_values(user_id: Uuid, filter: &LeadFilter, after: Option<After>) -> Vec<sea_orm::Value> {
    use sea_orm::Value;
    let mut values = vec![Value::from(user_id)];
    if let Some(status) = filter.status {
        values.push(sea_orm::ActiveEnum::into_value(status).into());
    }
    if let Some(source) = &filter.source {
        values.push(Value::from(if filter.source_any_case {
            source.to_lowercase()
        } else {
            source.clone()
        }));
    }
    if let Some(email) = &filter.email {
        values.push(Value::from(email.to_lowercase()));
    }
    if let Some(external_id) = &filter.external_id {
        values.push(Value::from(external_id.as_str()));
    }
    if let Some(key) = filter.api_key_id {
        values.push(Value::from(key));
    }
    for part in [&filter.utm_source, &filter.utm_campaign]
        .into_iter()
        .flatten()
    {
        values.push(Value::from(part.to_lowercase()));
    }
    values.extend(filter.created_after.map(Value::from));
    values.extend(filter.created_before.map(Value::from));
    if let Some(after) = after {
        values.push(Value::from(after.created_at));
        values.push(Value::from(after.id));
    }
    values
}

/// The list statements' texts by [`ListShape`], as sea-query wrote them; at most
/// [`ListTexts::MOST`] (a request chooses its page size and filters, so the shapes it
/// can ask for are many more than any client uses: past the bound, texts are written
/// per page again).
static LIST_TEXTS: ListTexts = ListTexts(std::sync::LazyLock::new(Default::default));

struct ListTexts(
    std::sync::LazyLock<
        std::sync::RwLock<std::collections::HashMap<ListShape, std::sync::Arc<String>>>,
    >,
);

impl ListTexts {
    const MOST: usize = 512;

    fn text(&self, shape: &ListShape) -> Option<std::sync::Arc<String>> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(shape)
            .cloned()
    }

    fn keep(&self, shape: ListShape, text: &str) {
        let mut texts = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if texts.len() < Self::MOST {
            texts.insert(shape, std::sync::Arc::new(text.to_owned()));
        }
    }
}

/// The query of a [`list`] page of at most `limit` leads.
pub fn list_query(
    db: &Db,
    user_id: Uuid,
    filter: &LeadFilter,
    after: Option<After>,
    limit: u64,
) -> sea_orm::Select<lead::Entity> {
    use sea_orm::sea_query::Expr;
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = matching(db, user_id, filter);
    if let Some(after) = after {
        // A row-value comparison, so PostgreSQL bounds the index scan with it (an OR of
        // the two cases would only filter rows the scan already read).
        query = query.filter(sea_orm::sea_query::ExprTrait::lt(
            Expr::tuple([
                Expr::col(lead::Column::CreatedAt),
                Expr::col(lead::Column::Id),
            ]),
            Expr::tuple([Expr::value(after.created_at), Expr::value(after.id)]),
        ));
    }
    query
        .order_by_desc(lead::Column::CreatedAt)
        .order_by_desc(lead::Column::Id)
        .limit(limit)
}

/// How many of `user_id`'s leads `filter` matches, counted up to `cap`: `Ok(None)`
/// when more than `cap` match (a count stops there, so a filter over millions of
/// leads costs no more than `cap` index entries).
pub async fn count(
    db: &Db,
    user_id: Uuid,
    filter: &LeadFilter,
    cap: u64,
) -> Result<Option<u64>, LeadError> {
    use sea_orm::{PaginatorTrait, QuerySelect};
    let counted = matching(db, user_id, filter)
        .select_only()
        .column(lead::Column::Id)
        .limit(cap + 1)
        .count(db)
        .await?;
    Ok((counted <= cap).then_some(counted))
}

/// `user_id`'s leads that `filter` matches, in no order.
fn matching(db: &Db, user_id: Uuid, filter: &LeadFilter) -> sea_orm::Select<lead::Entity> {
    use sea_orm::sea_query::{Expr, Func};
    let sqlite = db.connection().get_database_backend() == sea_orm::DatabaseBackend::Sqlite;
    let mut query = if filter.search.is_some() && sqlite {
        // SQLite's planner, without statistics (a database never analysed), takes the
        // account's list-order index for `user_id = ?` and reads every lead of the
        // account to find a search's few. Said to be unselective (`likelihood`, which
        // changes no result), the account condition no longer wins over the name and
        // email indexes, which it still bounds.
        lead::Entity::find().filter(Expr::expr(
            Func::cust("likelihood")
                .arg(lead::Column::UserId.eq(user_id))
                // The probability must be written into the statement: SQLite refuses
                // a parameter there.
                .arg(Expr::cust("0.9")),
        ))
    } else {
        lead::Entity::in_account(user_id)
    };
    query = query.filter(if filter.spam {
        lead::Column::SpamAt.is_not_null()
    } else {
        lead::Column::SpamAt.is_null()
    });
    if let Some(status) = filter.status {
        query = query.filter(lead::Column::Status.eq(status));
    }
    if let Some(source) = &filter.source {
        query = query.filter(if filter.source_any_case {
            sea_orm::sea_query::ExprTrait::eq(
                Expr::expr(Func::lower(Expr::col(lead::Column::Source))),
                source.to_lowercase(),
            )
        } else {
            lead::Column::Source.eq(source.as_str())
        });
    }
    if filter.imported {
        query = query.filter(lead::Column::ApiKeyId.is_null());
    }
    if let Some(email) = &filter.email {
        query = query.filter(sea_orm::sea_query::ExprTrait::eq(
            Expr::expr(Func::lower(Expr::col(lead::Column::Email))),
            email.to_lowercase(),
        ));
    }
    if let Some(external_id) = &filter.external_id {
        query = query.filter(lead::Column::ExternalId.eq(external_id.as_str()));
    }
    if let Some(key) = filter.api_key_id {
        query = query.filter(lead::Column::ApiKeyId.eq(key));
    }
    // Written into the text: the part names are ours, never a request's.
    if let Some(source) = &filter.utm_source {
        query = query.filter(attribution_is(db, "utm_source", source));
    }
    if let Some(campaign) = &filter.utm_campaign {
        query = query.filter(attribution_is(db, "utm_campaign", campaign));
    }
    if let Some(prefix) = &filter.search {
        query = query.filter(starts_with(db, prefix));
    }
    if let Some(at) = filter.created_after {
        query = query.filter(lead::Column::CreatedAt.gte(at));
    }
    if let Some(at) = filter.created_before {
        query = query.filter(lead::Column::CreatedAt.lt(at));
    }
    query
}

/// Erases the lead `id` of `user_id`'s account, and the data of every remembered
/// answer holding it, in one transaction with its `lead.deleted` webhook deliveries.
/// [`LeadError::NotFound`] when the account has no such lead.
pub async fn erase(db: &Db, user_id: Uuid, id: Uuid) -> Result<(), LeadError> {
    match erase_many(db, user_id, &[id]).await?.as_slice() {
        [] => Err(LeadError::NotFound),
        _ => Ok(()),
    }
}

/// Erases those of `ids` that are leads of `user_id`'s account (an id of another
/// account, or of no lead, is passed over), as [`erase`] does each, all in one
/// transaction; returns the erased leads.
pub async fn erase_many(db: &Db, user_id: Uuid, ids: &[Uuid]) -> Result<Vec<Lead>, LeadError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = ids.to_vec();
    let erased = db
        .transaction::<_, Vec<lead::Model>, DbErr>(move |txn| {
            Box::pin(async move {
                // The delete comes first and says what it deleted: a transaction that
                // read before writing could find, on SQLite, that another writer
                // committed in between (SQLITE_BUSY_SNAPSHOT, not waited for).
                let deleted = lead::Entity::delete_in_account(user_id)
                    .filter(lead::Column::Id.is_in(ids))
                    .exec_with_returning(txn)
                    .await?;
                // A spam lead's erasure is announced no more than its creation was.
                let announced: Vec<_> = deleted
                    .iter()
                    .filter(|lead| lead.spam_at.is_none())
                    .map(|lead| events::deleted(user_id, lead.id))
                    .collect();
                outbox::fan_out(txn, &announced).await?;
                for lead in &deleted {
                    idempotency::forget_lead(txn, user_id, lead.id).await?;
                }
                Ok(deleted)
            })
        })
        .await?;
    Ok(erased.into_iter().map(Lead::from).collect())
}

/// Sets the status of those of `ids` that are leads of `user_id`'s account and not
/// spam, in one transaction with a `lead.updated` event for each lead whose status
/// changed; returns those leads as changed (a lead already in `status` is left as it
/// was, its `updated_at` too, and told to no one).
pub async fn set_status_many(
    db: &Db,
    user_id: Uuid,
    ids: &[Uuid],
    status: LeadStatus,
) -> Result<Vec<Lead>, LeadError> {
    use sea_orm::sea_query::Expr;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = ids.to_vec();
    let changed = db
        .transaction::<_, Vec<Lead>, DbErr>(move |txn| {
            Box::pin(async move {
                let changed: Vec<Lead> = lead::Entity::update_in_account(user_id)
                    .col_expr(lead::Column::Status, Expr::value(status.as_str()))
                    .col_expr(lead::Column::UpdatedAt, Expr::value(ciq_entity::now()))
                    .filter(lead::Column::Id.is_in(ids))
                    .filter(lead::Column::SpamAt.is_null())
                    .filter(lead::Column::Status.ne(status))
                    .exec_with_returning(txn)
                    .await?
                    .into_iter()
                    .map(Lead::from)
                    .collect();
                let announced: Vec<_> = changed
                    .iter()
                    .filter_map(|lead| events::event(EventType::Updated, lead))
                    .collect();
                outbox::fan_out(txn, &announced).await?;
                Ok(changed)
            })
        })
        .await?;
    Ok(changed)
}

/// Those of `ids` that are leads of `user_id`'s account (spam or not), newest first.
pub async fn find_many(db: &Db, user_id: Uuid, ids: &[Uuid]) -> Result<Vec<Lead>, LeadError> {
    use sea_orm::QueryOrder;
    let rows = lead::Entity::in_account(user_id)
        .filter(lead::Column::Id.is_in(ids.to_vec()))
        .order_by_desc(lead::Column::CreatedAt)
        .order_by_desc(lead::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(Lead::from).collect())
}

/// Releases the spam lead `id` of `user_id`'s account from the quarantine ("Not spam"):
/// it becomes a normal lead and its `lead.created` event is recorded now, in the same
/// transaction. [`LeadError::NotFound`] when the account has no such spam lead.
pub async fn release_spam(db: &Db, user_id: Uuid, id: Uuid) -> Result<Lead, LeadError> {
    use sea_orm::sea_query::Expr;
    let txn = db.begin().await?;
    let released = lead::Entity::update_in_account(user_id)
        .col_expr(lead::Column::SpamReason, Expr::value(None::<String>))
        .col_expr(lead::Column::SpamAt, Expr::value(None::<DateTime<Utc>>))
        .filter(lead::Column::Id.eq(id))
        .filter(lead::Column::SpamAt.is_not_null())
        .exec(&txn)
        .await?;
    if released.rows_affected == 0 {
        return Err(LeadError::NotFound);
    }
    let lead = find(&txn, user_id, id).await?;
    outbox::fan_out(&txn, events::released(&lead).as_slice()).await?;
    txn.commit().await?;
    Ok(lead)
}

/// Spam leads are kept this long after they were judged spam, then erased.
pub const SPAM_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Erases every spam lead judged more than `retention` ago, as [`erase`] does (a
/// remembered answer that held one replays as erased; no event, as for any spam), a
/// few hundred at a time. Returns how many went.
pub async fn purge_spam(db: &Db, retention: std::time::Duration) -> Result<u64, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    let cutoff = ciq_entity::now()
        - chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
    let mut purged = 0;
    loop {
        let due: Vec<(Uuid, Uuid)> = lead::Entity::find()
            .select_only()
            .column(lead::Column::UserId)
            .column(lead::Column::Id)
            .filter(lead::Column::SpamAt.lt(cutoff))
            .order_by_asc(lead::Column::SpamAt)
            .limit(500)
            .into_tuple()
            .all(db)
            .await?;
        if due.is_empty() {
            return Ok(purged);
        }
        for (user_id, id) in due {
            match erase(db, user_id, id).await {
                Ok(()) => purged += 1,
                // Erased meanwhile by its owner: nothing left to do.
                Err(LeadError::NotFound) => {}
                Err(err) => return Err(DbErr::Custom(err.to_string())),
            }
        }
    }
}

/// Applies `patch` to the lead `id` of `user_id`'s account and returns it as changed
/// (`updated_at` moves; `api_key_id` stays the key that created it).
/// [`LeadError::NotFound`] when the account has no such lead,
/// [`LeadError::DuplicateLead`] when the new `external_id` is another lead's.
///
/// The change and its `lead.updated` webhook deliveries are one transaction; a patch
/// that carries no field changes nothing and tells no one.
pub async fn update(
    db: &Db,
    user_id: Uuid,
    id: Uuid,
    patch: crate::rules::LeadPatch,
) -> Result<Lead, LeadError> {
    let txn = db.begin().await?;
    let changed = match apply_patch(&txn, user_id, lead::Column::Id.eq(id), patch).await {
        Ok(changed) => changed,
        Err(PatchError::Taken(external_id)) => {
            txn.rollback().await?;
            return Err(duplicate(db, user_id, &external_id).await);
        }
        Err(PatchError::Lead(err)) => return Err(err),
    };
    let lead = match changed {
        // The update's own RETURNING: no second read.
        Some(mut rows) if !rows.is_empty() => {
            let lead = Lead::from(rows.swap_remove(0));
            outbox::fan_out(&txn, events::event(EventType::Updated, &lead).as_slice()).await?;
            lead
        }
        // No such lead (NotFound), or an empty patch: the lead as it is.
        _ => find(&txn, user_id, id).await?,
    };
    txn.commit().await?;
    Ok(lead)
}

/// Applies `patch` to the lead of `user_id`'s account that `which` picks (by id, or by
/// external id); returns the rows as changed (`RETURNING`, so no read follows; empty: no
/// such lead), or `None` when the patch carries no field at all (nothing is written).
async fn apply_patch(
    db: &impl sea_orm::ConnectionTrait,
    user_id: Uuid,
    which: sea_orm::sea_query::SimpleExpr,
    patch: crate::rules::LeadPatch,
) -> Result<Option<Vec<lead::Model>>, PatchError> {
    use sea_orm::sea_query::Expr;
    let external_id = match &patch.external_id {
        crate::rules::Change::Set(v) => Some(v.clone()),
        _ => None,
    };
    let mut columns = patch.columns();
    if !columns.is_empty() {
        columns.push((lead::Column::UpdatedAt, Expr::value(ciq_entity::now())));
        let update = columns
            .into_iter()
            .fold(
                lead::Entity::update_in_account(user_id),
                |update, (column, value)| update.col_expr(column, value),
            )
            .filter(which);
        return match update.exec_with_returning(db).await {
            Ok(rows) => Ok(Some(rows)),
            Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(match external_id {
                    Some(external_id) => PatchError::Taken(external_id),
                    None => PatchError::Lead(LeadError::from(err)),
                })
            }
            Err(err) => Err(PatchError::Lead(err.into())),
        };
    }
    Ok(None)
}

/// Why [`apply_patch`] wrote nothing.
enum PatchError {
    /// The new `external_id` is another lead's. Which lead is looked up by the caller,
    /// outside the transaction the violation ended (PostgreSQL takes no more statements
    /// in it).
    Taken(String),
    /// Anything else.
    Lead(LeadError),
}

impl From<DbErr> for PatchError {
    fn from(err: DbErr) -> Self {
        Self::Lead(err.into())
    }
}

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upserted {
    /// No lead had the external id: this one was created.
    Created(Box<Lead>),
    /// The lead with the external id was changed as the patch says.
    Updated(Box<Lead>),
}

impl Upserted {
    /// The lead, as stored now.
    pub fn lead(&self) -> &Lead {
        match self {
            Self::Created(lead) | Self::Updated(lead) => lead,
        }
    }
}

/// An upsert's answer to remember: the key, and how to render it.
pub struct RememberedUpsert<'a> {
    /// The validated `Idempotency-Key`.
    pub key: &'a str,
    /// Renders the answer body (its status: 201 created, 200 updated).
    pub render: &'a (dyn Fn(&Upserted) -> String + Sync),
}

/// Creates or updates, by `external_id`, the lead of `owner`'s account: `patch` (which
/// carries the external id) changes the lead that has it; without one, `new` is created
/// (`None`: the body does not pass the create rules, and `Ok(None)` says so). Race-free
/// on both stores: each attempt writes first (the update, else an insert that skips a
/// conflicting external id) and only then reads, so concurrent upserts of one external
/// id leave one lead, carrying one of their bodies. `api_key_id` stays the creator's.
pub async fn upsert(
    db: &Db,
    writer: &LeadWriter,
    owner: LeadOwner,
    external_id: &str,
    patch: crate::rules::LeadPatch,
    new: Option<NewLead>,
    remembered: Option<RememberedUpsert<'_>>,
) -> Result<Option<Upserted>, LeadError> {
    let breaker = writer.breaker();
    let written = breaker
        .guard(write_upsert(db, owner, external_id, patch, new, remembered))
        .await?;
    if let Err(err) = &written
        && err.is_store_trouble()
    {
        // Perhaps the store is gone: the breaker's probe finds out.
        breaker.failure();
    }
    let upserted = written?;
    if let Some(Upserted::Created(_)) = &upserted {
        metrics::counter!("ciq_leads_created_total").increment(1);
    }
    Ok(upserted)
}

async fn write_upsert(
    db: &Db,
    owner: LeadOwner,
    external_id: &str,
    patch: crate::rules::LeadPatch,
    new: Option<NewLead>,
    remembered: Option<RememberedUpsert<'_>>,
) -> Result<Option<Upserted>, LeadError> {
    let txn = db.begin().await?;
    let Some(outcome) = upsert_in(&txn, owner, external_id, patch, new.as_ref()).await? else {
        txn.rollback().await?;
        return Ok(None);
    };
    if let Some(remembered) = remembered {
        let status = match outcome {
            Upserted::Created(_) => 201,
            Upserted::Updated(_) => 200,
        };
        let body = (remembered.render)(&outcome);
        idempotency::complete(
            &txn,
            owner.user_id,
            remembered.key,
            status,
            &body,
            outcome.lead().id,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(Some(outcome))
}

/// Creates `leads` for `owner` inside the caller's transaction `txn`, with their
/// `lead.created` events, in one statement; a lead whose `external_id` the account
/// already holds is skipped (rows without one never conflict). Returns how many it was
/// handed (a bulk load counts what it sent; the upsert path is for exact outcomes).
pub async fn insert_in(
    txn: &impl sea_orm::ConnectionTrait,
    owner: LeadOwner,
    leads: Vec<NewLead>,
) -> Result<usize, DbErr> {
    if leads.is_empty() {
        return Ok(0);
    }
    let now = ciq_entity::now();
    let rows: Vec<lead::Model> = leads
        .into_iter()
        .map(|new| row_of(owner, new, now))
        .collect();
    let created = events::created_rows(&rows);
    let count = rows.len();
    let rows: Vec<&lead::Model> = rows.iter().collect();
    txn.execute_raw(insert_statement(txn.get_database_backend(), &rows, false))
        .await?;
    outbox::fan_out(txn, &created).await?;
    Ok(count)
}

/// One upsert inside the caller's transaction `txn`: the update by external id, else
/// an insert that skips a conflicting external id, tried until one of them wrote; its
/// webhook event (`lead.updated` or `lead.created`) fanned out in the same transaction.
/// `None`: no lead has the external id and `new` is none (nothing written).
pub async fn upsert_in(
    txn: &impl sea_orm::ConnectionTrait,
    owner: LeadOwner,
    external_id: &str,
    patch: crate::rules::LeadPatch,
    new: Option<&NewLead>,
) -> Result<Option<Upserted>, LeadError> {
    let mut announced = Announced::default();
    let upserted = upsert_collecting(txn, owner, external_id, patch, new, &mut announced).await?;
    announced.fan_out(txn).await?;
    Ok(upserted)
}

/// Webhook events of several writes in one transaction, fanned out together: one
/// look-up of the accounts' endpoints (and one insert of deliveries) for all of them
/// instead of one per write.
#[derive(Debug, Default)]
pub struct Announced(Vec<LeadEvent>);

impl Announced {
    /// Fans the events out inside `txn`, the transaction of the writes they announce.
    pub async fn fan_out(self, txn: &impl sea_orm::ConnectionTrait) -> Result<(), DbErr> {
        outbox::fan_out(txn, &self.0).await.map(drop)
    }
    /// Adds an event (none: a write that tells no one, a spam lead's).
    pub(crate) fn extend(&mut self, events: impl IntoIterator<Item = LeadEvent>) {
        self.0.extend(events);
    }
}

/// [`upsert_in`] without the fan-out: the upsert's event joins `announced`, for the
/// caller to fan out with others (an import chunk: one fan-out for all its rows) in the
/// same transaction.
pub async fn upsert_collecting(
    txn: &impl sea_orm::ConnectionTrait,
    owner: LeadOwner,
    external_id: &str,
    patch: crate::rules::LeadPatch,
    new: Option<&NewLead>,
    announced: &mut Announced,
) -> Result<Option<Upserted>, LeadError> {
    let user_id = owner.user_id;
    let by_external_id = || lead::Column::ExternalId.eq(external_id);
    // A concurrent upsert can take each branch from under this one once; a third try
    // always finds the lead.
    for _ in 0..3 {
        let patched = match apply_patch(txn, user_id, by_external_id(), patch.clone()).await {
            Ok(patched) => patched,
            // The patch sets the very external id it is found by: no other lead has it.
            Err(PatchError::Taken(_)) => {
                return Err(LeadError::Unavailable(
                    "the lead with this external_id kept changing; retry".into(),
                ));
            }
            Err(PatchError::Lead(err)) => return Err(err),
        };
        if patched.as_ref().is_none_or(|rows| !rows.is_empty()) {
            if let Some(field) = patch.creates_only {
                // The lead exists: what only a create takes is refused (the caller's
                // transaction is rolled back with the patch).
                return Err(LeadError::SetOnce(field));
            }
            // The update's RETURNING, or (an empty patch) the lead as it is.
            let lead = match patched {
                Some(mut rows) => Some(rows.swap_remove(0)),
                None => {
                    lead::Entity::in_account(user_id)
                        .filter(by_external_id())
                        .one(txn)
                        .await?
                }
            };
            if let Some(lead) = lead {
                let lead = Lead::from(lead);
                announced.extend(LeadEvent::of(EventType::Updated, lead.clone()));
                return Ok(Some(Upserted::Updated(Box::new(lead))));
            }
            continue;
        }
        let Some(new) = new else {
            return Ok(None);
        };
        let row = row_of(owner, new.clone(), ciq_entity::now());
        let inserted = lead::Entity::insert(lead::ActiveModel::from(row.clone()))
            .on_conflict(external_id_conflict())
            .exec_without_returning(txn)
            .await?;
        if inserted == 1 {
            let lead = Lead::from(row);
            announced.extend(LeadEvent::of(EventType::Created, lead.clone()));
            return Ok(Some(Upserted::Created(Box::new(lead))));
        }
    }
    Err(LeadError::Unavailable(
        "the lead with this external_id kept changing; retry".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let after = After {
            created_at: DateTime::<Utc>::from_timestamp_millis(1_764_547_200_123).unwrap(),
            id: Uuid::now_v7(),
        };
        let cursor = after.to_cursor();
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(After::from_cursor(&cursor), Some(after));
        for bad in ["", "not a cursor", "MTIz", "%%%"] {
            assert_eq!(After::from_cursor(bad), None, "{bad:?}");
        }
    }

    /// Every combination of the list's filters, with and without a cursor: the values
    /// a kept text is sent with are sea-query's own for that page, in its order (each
    /// value distinct, so a swap cannot hide), and a page served from the kept text is
    /// the statement sea-query writes.
    #[tokio::test]
    async fn a_kept_list_text_gets_the_values_sea_query_would_write() {
        use sea_orm::{ConnectOptions, Database};
        // Connects on first use, which never comes: only the backend is read.
        let mut options = ConnectOptions::new("postgres://nobody@127.0.0.1:1/none");
        options.connect_lazy(true);
        let db = Db::direct(Database::connect(options).await.unwrap());
        let at = |millis| DateTime::<Utc>::from_timestamp_millis(millis).unwrap();
        let user = Uuid::now_v7();
        for bits in 0u32..(1 << 12) {
            let on = |i: u32| bits & (1 << i) != 0;
            let filter = LeadFilter {
                spam: on(0),
                status: on(1).then_some(LeadStatus::Qualified),
                source: on(2).then(|| "Web Form".to_owned()),
                source_any_case: on(3),
                imported: on(4),
                email: on(5).then(|| "Ann@Example.com".to_owned()),
                external_id: on(6).then(|| "crm-7".to_owned()),
                api_key_id: on(7).then(Uuid::now_v7),
                utm_source: on(8).then(|| "Google".to_owned()),
                utm_campaign: on(9).then(|| "Spring".to_owned()),
                created_after: on(10).then(|| at(1_000)),
                created_before: on(11).then(|| at(2_000)),
                search: None,
            };
            for after in [
                None,
                Some(After {
                    created_at: at(1_500),
                    id: Uuid::now_v7(),
                }),
            ] {
                let written = ciq_store::literal_limit(
                    sea_orm::DbBackend::Postgres,
                    &list_query(&db, user, &filter, after, 26),
                );
                assert_eq!(
                    written.values.as_ref().unwrap().0,
                    list_values(user, &filter, after),
                    "filters {bits:012b}, after {after:?}: {}",
                    written.sql
                );
                // Twice: the first page writes and keeps the text, the second is served
                // from it (for the first `ListTexts::MOST` shapes; the rest are written
                // each time, as past the bound in service).
                for _ in 0..2 {
                    let served = list_statement(&db, user, &filter, after, 26);
                    assert_eq!(served.sql, written.sql);
                    assert_eq!(served.values, written.values);
                }
            }
        }
    }
}
