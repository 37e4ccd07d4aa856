//! The outbox: a lead change writes its deliveries — one row per (event, enabled
//! endpoint of the account subscribed to the event's type) — in its own transaction, by
//! one `INSERT … SELECT` that joins the events with the account's endpoints. So no
//! acknowledged change lacks its event and no event exists for a change that rolled
//! back; an account without endpoints gets no rows (the statement finds none).

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};
use uuid::Uuid;

use super::{EventType, lead_json, payload};
use crate::store::Lead;

/// One lead change, as its deliveries carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadEvent {
    /// The event's id (`webhook-id`): the same at every endpoint and on every attempt.
    pub id: Uuid,
    /// What happened.
    pub kind: EventType,
    /// The account.
    pub user_id: Uuid,
    /// The lead.
    pub lead_id: Uuid,
    /// The body sent.
    pub payload: String,
    /// When it happened.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl LeadEvent {
    /// The event of `kind` (created or updated) for `lead` as it is now: the payload
    /// holds the whole lead object.
    pub fn new(kind: EventType, lead: &Lead) -> Self {
        let at = match kind {
            EventType::Created => lead.created_at,
            _ => lead.updated_at,
        };
        Self {
            id: Uuid::now_v7(),
            kind,
            user_id: lead.user_id,
            lead_id: lead.id,
            payload: payload(kind, lead_json(lead), at),
            at,
        }
    }

    /// The event of erasing the lead `lead_id` of `user_id`'s account: its payload
    /// carries those two ids alone.
    pub fn deleted(user_id: Uuid, lead_id: Uuid) -> Self {
        let at = ciq_entity::now();
        let lead = serde_json::json!({"id": lead_id, "user_id": user_id});
        Self {
            id: Uuid::now_v7(),
            kind: EventType::Deleted,
            user_id,
            lead_id,
            payload: payload(EventType::Deleted, lead, at),
            at,
        }
    }
}

/// Events per statement (six parameters each, well under SQLite's and PostgreSQL's
/// limits).
const PER_STATEMENT: usize = 500;

/// A new delivery id, made by the store: PostgreSQL's random UUID; on SQLite 16 random
/// bytes, the form ids are stored in there.
fn new_id(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "gen_random_uuid()",
        _ => "randomblob(16)",
    }
}

/// Whether `events` (a comma-separated subscription) holds the event type `kind`.
fn subscribed(backend: DbBackend, kind: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("position({kind} in e.events) > 0"),
        _ => format!("instr(e.events, {kind}) > 0"),
    }
}

/// Writes the deliveries of `events` through `conn` — the transaction of the change.
pub async fn record(conn: &impl ConnectionTrait, events: &[LeadEvent]) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    for chunk in events.chunks(PER_STATEMENT) {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 6);
        let mut rows = Vec::with_capacity(chunk.len());
        for event in chunk {
            let base = values.len();
            let place = |n: usize| match backend {
                DbBackend::Postgres => format!("${}", base + n),
                _ => "?".to_owned(),
            };
            rows.push(format!(
                "({}, {}, {}, {}, {}, {})",
                place(1),
                place(2),
                place(3),
                place(4),
                place(5),
                place(6)
            ));
            values.extend([
                Value::from(event.user_id),
                Value::from(event.id),
                Value::from(event.kind.as_str()),
                Value::from(event.lead_id),
                Value::from(event.payload.clone()),
                Value::from(event.at),
            ]);
        }
        let sql = format!(
            "INSERT INTO webhook_deliveries (id, user_id, endpoint_id, event_id, event_type, \
             lead_id, payload, status, attempts, next_attempt_at, created_at) \
             SELECT {id}, e.user_id, e.id, x.column2, x.column3, x.column4, x.column5, \
             'pending', 0, x.column6, x.column6 \
             FROM (VALUES {rows}) AS x \
             JOIN webhook_endpoints e ON e.user_id = x.column1 AND e.enabled AND {subscribed}",
            id = new_id(backend),
            rows = rows.join(", "),
            subscribed = subscribed(backend, "x.column3"),
        );
        conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// The PostgreSQL form for group commit: the batch's created leads whose account has a
/// subscribed endpoint, as one `webhook_outbox` row (their rows as JSON) in the same
/// statement as their `INSERT` (`leads_insert`, which this makes return its rows) — one
/// small row per batch on the create path, no payload rendering there; [`FAN_OUT`] turns
/// it into delivery rows later, off the request path.
pub(crate) fn with_created_outbox(leads_insert: &str) -> String {
    format!(
        "WITH leads_in AS ({leads_insert} RETURNING *) \
         INSERT INTO webhook_outbox (id, created_at, events) \
         SELECT gen_random_uuid(), now(), json_agg(l)::text FROM leads_in l \
         WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.user_id = l.user_id \
         AND e.enabled AND position('lead.created' in e.events) > 0) HAVING count(*) > 0"
    )
}

/// The payload of a `lead.created` event for the lead row `l`, rendered by PostgreSQL:
/// [`super::lead_json`]'s object field for field (times as RFC 3339 with milliseconds
/// and `Z`, money as the shortest decimal; the e2e tests compare it with the API's
/// answer). `trim_scale` needs PostgreSQL 13 or later.
macro_rules! created_payload_sql {
    () => {
        "json_build_object('type', 'lead.created', 'timestamp', \
         to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
         'data', json_build_object('lead', json_build_object('id', l.id, 'user_id', l.user_id, \
         'name', l.name, 'email', l.email, 'phone', l.phone, 'source', l.source, \
         'industry', l.industry, 'score', l.score, 'status', l.status, \
         'monthly_revenue', trim_scale(l.monthly_revenue_cents::numeric / 100), \
         'budget', trim_scale(l.budget_cents::numeric / 100), 'description', l.description, \
         'external_id', l.external_id, 'api_key_id', l.api_key_id, \
         'created_at', to_char(l.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
         'updated_at', to_char(COALESCE(l.updated_at, l.created_at) AT TIME ZONE 'UTC', \
         'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))))::text"
    };
}

/// Turns up to 20 outbox rows (the oldest; rows another instance is turning are
/// skipped) into their delivery rows — one per (created lead, enabled endpoint of its
/// account subscribed to `lead.created` now), the payload rendered here — and deletes
/// them, in one statement: an event is fanned out once, and only together with its
/// removal. The event id is derived from the lead's (a lead is created once), so every
/// endpoint gets the same. PostgreSQL only (SQLite writes delivery rows directly).
pub(crate) const FAN_OUT: &str = concat!(
    "WITH batch AS (DELETE FROM webhook_outbox WHERE id IN \
     (SELECT id FROM webhook_outbox ORDER BY created_at LIMIT 20 FOR UPDATE SKIP LOCKED) \
     RETURNING events), \
     rows AS (SELECT l.* FROM batch, json_populate_recordset(NULL::leads, batch.events::json) l) \
     INSERT INTO webhook_deliveries (id, user_id, endpoint_id, event_id, event_type, lead_id, \
     payload, status, attempts, next_attempt_at, created_at) \
     SELECT gen_random_uuid(), e.user_id, e.id, md5('lead.created/' || l.id::text)::uuid, \
     'lead.created', l.id, ",
    created_payload_sql!(),
    ", 'pending', 0, now(), l.created_at \
     FROM rows l JOIN webhook_endpoints e ON e.user_id = l.user_id AND e.enabled \
     AND position('lead.created' in e.events) > 0"
);
