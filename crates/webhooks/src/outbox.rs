//! The outbox: events become delivery rows — one per (event, enabled endpoint of the
//! event's account subscribed to its type) — in one place, [`fan_out`], whatever wrote
//! them.
//!
//! A change that writes its own events calls [`fan_out`] in its own transaction, so no
//! acknowledged change lacks its deliveries and none exists for a change that rolled
//! back; an account without endpoints costs one look-up and no rows. A writer that
//! must not render events on its hot path (group commit's one statement on PostgreSQL)
//! instead writes one `webhook_outbox` row in its own form, named by the row's `codec`;
//! the delivery workers [`drain`] those rows through the domain's [`Codec`] into
//! [`fan_out`] later, deleting each row in the same transaction.
//!
//! Nothing here knows what an event is about: a type, an account, a subject id, an
//! opaque payload and a flat map of attributes (what filters will read).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Statement, TransactionTrait,
};
use uuid::Uuid;

use ciq_entity::webhook_delivery::{self, DeliveryStatus};
use ciq_entity::webhook_endpoint;

use crate::filter::Filter;

pub use crate::filter::Attributes;

/// One change of an account's data, as every endpoint subscribed to its type receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's id (`webhook-id`): the same at every endpoint and on every attempt.
    pub id: Uuid,
    /// Its type, as endpoints subscribe to it (`lead.created`).
    pub kind: &'static str,
    /// The account whose endpoints receive it.
    pub account: Uuid,
    /// The id of the thing it is about (a lead's id), for the delivery log.
    pub subject: Uuid,
    /// The body sent, exactly.
    pub payload: String,
    /// What filters may test, flat (no nested objects).
    pub attributes: Attributes,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// How one domain's batch rows in `webhook_outbox` are read back into events.
#[derive(Debug, Clone, Copy)]
pub struct Codec {
    /// The `codec` the domain writes into its rows.
    pub name: &'static str,
    /// The row's `events` text to its events (an error names what is wrong).
    pub decode: fn(&str) -> Result<Vec<Event>, String>,
}

/// Delivery rows per statement (eleven parameters each, far below every limit).
const PER_STATEMENT: usize = 500;

/// Whether the stored subscription `events` (comma-separated names) holds `kind`.
fn subscribes(events: &str, kind: &str) -> bool {
    events.split(',').any(|name| name == kind)
}

/// What a write announces, before it is an [`Event`]: its account and type are known at
/// once, its event (payload, attributes, id) is made only when an endpoint of the
/// account subscribes to the type. Most accounts have no endpoint, and rendering every
/// written lead's payload and attributes anyway was a sixth of a CSV import's gateway
/// CPU (docs/performance.md, "CSV import").
pub trait Announcement {
    /// The account whose endpoints would receive it.
    fn account(&self) -> Uuid;
    /// Its type, as endpoints subscribe to it (`lead.created`).
    fn kind(&self) -> &'static str;
    /// The event itself, made when some endpoint receives it.
    fn event(&self) -> std::borrow::Cow<'_, Event>;
}

/// An event made already is its own announcement.
impl Announcement for Event {
    fn account(&self) -> Uuid {
        self.account
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn event(&self) -> std::borrow::Cow<'_, Event> {
        std::borrow::Cow::Borrowed(self)
    }
}

/// Writes the delivery rows of `events` through `conn` (the transaction of the change,
/// or of the outbox rows they came from); how many it wrote. Every event goes to each
/// enabled endpoint of its account that subscribes to its type, as it is now; an
/// announcement that no endpoint receives is never made into an event.
pub async fn fan_out<A: Announcement>(
    conn: &impl ConnectionTrait,
    events: &[A],
) -> Result<u64, DbErr> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut accounts: Vec<Uuid> = events.iter().map(Announcement::account).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let mut endpoints: HashMap<Uuid, Vec<(Uuid, String, Option<Filter>)>> = HashMap::new();
    for chunk in accounts.chunks(PER_STATEMENT) {
        let rows: Vec<(Uuid, Uuid, String, Option<String>)> = webhook_endpoint::Entity::find()
            .select_only()
            .columns([
                webhook_endpoint::Column::UserId,
                webhook_endpoint::Column::Id,
                webhook_endpoint::Column::Events,
                webhook_endpoint::Column::Filter,
            ])
            .filter(webhook_endpoint::Column::UserId.is_in(chunk.iter().copied()))
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .into_tuple()
            .all(conn)
            .await?;
        for (account, id, subscribed, filter) in rows {
            let filter = Filter::stored(filter.as_deref());
            endpoints
                .entry(account)
                .or_default()
                .push((id, subscribed, filter));
        }
    }
    if endpoints.is_empty() {
        return Ok(0);
    }
    let mut rows = Vec::new();
    let mut filtered = 0_u64;
    for announced in events {
        let Some(receivers) = endpoints.get(&announced.account()) else {
            continue;
        };
        let kind = announced.kind();
        if !receivers
            .iter()
            .any(|(_, subscribed, _)| subscribes(subscribed, kind))
        {
            continue;
        }
        let event = announced.event();
        for (endpoint_id, subscribed, filter) in receivers {
            if !subscribes(subscribed, event.kind) {
                continue;
            }
            if filter
                .as_ref()
                .is_some_and(|f| !f.matches(&event.attributes))
            {
                filtered += 1;
                continue;
            }
            rows.push(pending_delivery(
                event.account,
                *endpoint_id,
                event.id,
                event.kind,
                event.subject,
                event.payload.clone(),
                event.at,
            ));
        }
    }
    if filtered > 0 {
        metrics::counter!("ciq_webhook_events_filtered_total").increment(filtered);
    }
    let made = rows.len() as u64;
    insert_pending(conn, rows).await?;
    Ok(made)
}

/// PostgreSQL's insert of new delivery rows: the rows as one JSON parameter, so the
/// statement's text is the same whatever their number (parsed and planned once per
/// connection) and one round trip carries them all.
const INSERT_PENDING_PG: &str = "INSERT INTO webhook_deliveries (id, user_id, endpoint_id, \
    event_id, event_type, lead_id, payload, status, attempts, next_attempt_at, created_at) \
    SELECT x.id, x.user_id, x.endpoint_id, x.event_id, x.event_type, x.lead_id, x.payload, \
    'pending', 0, x.at, x.at FROM json_to_recordset($1::json) AS x(id uuid, user_id uuid, \
    endpoint_id uuid, event_id uuid, event_type text, lead_id uuid, payload text, at timestamptz)";

/// Stores `rows` (new, pending): on PostgreSQL in one statement, elsewhere in chunks of
/// [`PER_STATEMENT`].
async fn insert_pending(
    conn: &impl ConnectionTrait,
    rows: Vec<webhook_delivery::Model>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    if conn.get_database_backend() == DbBackend::Postgres {
        /// A row as [`INSERT_PENDING_PG`] reads it.
        #[derive(serde::Serialize)]
        struct Row<'a> {
            id: Uuid,
            user_id: Uuid,
            endpoint_id: Uuid,
            event_id: Uuid,
            event_type: &'a str,
            lead_id: Uuid,
            payload: &'a str,
            at: DateTime<Utc>,
        }
        let rows: Vec<Row<'_>> = rows
            .iter()
            .map(|d| Row {
                id: d.id,
                user_id: d.user_id,
                endpoint_id: d.endpoint_id,
                event_id: d.event_id,
                event_type: &d.event_type,
                lead_id: d.lead_id,
                payload: &d.payload,
                at: d.created_at,
            })
            .collect();
        let json = serde_json::to_string(&rows).map_err(|e| DbErr::Custom(e.to_string()))?;
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            INSERT_PENDING_PG,
            [json.into()],
        ))
        .await?;
        return Ok(());
    }
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<webhook_delivery::ActiveModel> =
            rows.by_ref().take(PER_STATEMENT).map(Into::into).collect();
        webhook_delivery::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// A new delivery of an event to an endpoint, due at `at` (when the event happened, or
/// now for a replay or a test), not yet tried.
pub(crate) fn pending_delivery(
    user_id: Uuid,
    endpoint_id: Uuid,
    event_id: Uuid,
    event_type: &str,
    lead_id: Uuid,
    payload: String,
    at: DateTime<Utc>,
) -> webhook_delivery::Model {
    webhook_delivery::Model {
        id: Uuid::now_v7(),
        user_id,
        endpoint_id,
        event_id,
        event_type: event_type.to_owned(),
        lead_id,
        payload,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: at,
        lease_owner: None,
        lease_until: None,
        last_status_code: None,
        last_response: None,
        last_error: None,
        last_attempt_at: None,
        created_at: at,
        delivered_at: None,
    }
}

/// Events fanned out per statement while draining.
const FLUSH_EVENTS: usize = 200;

/// Outbox rows taken per transaction (a group-commit batch row holds up to 256 events).
const DRAIN_BATCH: i64 = 64;

/// Fans out outbox rows, oldest first, until none of a known codec is left; how many
/// deliveries that made. Each turn takes up to [`DRAIN_BATCH`] rows (on PostgreSQL
/// skipping rows another instance holds), turns them into delivery rows and deletes
/// them in one transaction: a row is fanned out once, and only together with its
/// removal. A row whose codec this instance does not know (a newer instance's) is left
/// for one that does; a row its codec cannot read is logged and dropped, since no
/// retry would read it either.
pub async fn drain(db: &ciq_store::Db, codecs: &[Codec]) -> Result<u64, DbErr> {
    if codecs.is_empty() {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    let names: Vec<sea_orm::Value> = codecs.iter().map(|c| c.name.into()).collect();
    let place = |n: usize| ciq_store::placeholder(backend, n);
    let known = (1..=names.len()).map(place).collect::<Vec<_>>().join(", ");
    // Most turns find the outbox empty: one plain look first, no transaction for that.
    let waiting = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!("SELECT 1 AS waiting FROM webhook_outbox WHERE codec IN ({known}) LIMIT 1"),
            names.clone(),
        ))
        .await?;
    if waiting.is_none() {
        return Ok(0);
    }
    let lock = match backend {
        DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    let claim = format!(
        "SELECT id, codec, events FROM webhook_outbox WHERE codec IN ({known}) \
         ORDER BY created_at LIMIT {DRAIN_BATCH}{lock}"
    );
    let mut made = 0;
    loop {
        let txn = db.begin().await?;
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                claim.clone(),
                names.clone(),
            ))
            .await?;
        if rows.is_empty() {
            txn.commit().await?;
            return Ok(made);
        }
        let mut events = Vec::new();
        let mut ids = Vec::with_capacity(rows.len());
        // Fanned out as they come, [`FLUSH_EVENTS`] at a time: a turn's memory is about
        // that many events whatever its rows hold.
        for row in rows {
            let id: Uuid = row.try_get("", "id")?;
            let codec: String = row.try_get("", "codec")?;
            let text: String = row.try_get("", "events")?;
            let decode = codecs
                .iter()
                .find(|c| c.name == codec)
                .map(|c| c.decode)
                .expect("only rows of known codecs are selected");
            match decode(&text) {
                Ok(decoded) => events.extend(decoded),
                Err(why) => {
                    metrics::counter!("ciq_webhook_outbox_unreadable_total").increment(1);
                    tracing::error!(outbox_row = %id, codec, error = %why,
                        "webhook outbox row unreadable; dropped");
                }
            }
            ids.push(id);
            if events.len() >= FLUSH_EVENTS {
                made += fan_out(&txn, &events).await?;
                events.clear();
            }
        }
        made += fan_out(&txn, &events).await?;
        let ids: Vec<sea_orm::Value> = ids.into_iter().map(Into::into).collect();
        let list = (1..=ids.len()).map(place).collect::<Vec<_>>().join(", ");
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!("DELETE FROM webhook_outbox WHERE id IN ({list})"),
            ids,
        ))
        .await?;
        txn.commit().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_holds_whole_names_only() {
        assert!(subscribes("lead.created,lead.deleted", "lead.deleted"));
        assert!(subscribes("lead.created", "lead.created"));
        assert!(!subscribes("lead.created", "lead.create"));
        assert!(!subscribes("lead.created,lead.updated", "lead.deleted"));
    }
}
