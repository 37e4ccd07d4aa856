//! Lead events, as ciq-webhooks' outbox carries them: their types, their payload (the
//! lead object of the API), the attributes filters read, and the batch rows group commit
//! writes on PostgreSQL ([`with_created_outbox`]) with the [`CODECS`] that read them back.

use std::borrow::{Borrow, Cow};

use ciq_entity::lead;
use ciq_webhooks::outbox::{Announcement, Attributes, Codec, Event};
use serde_json::json;
use uuid::Uuid;

use crate::lead::Lead;

/// A lead event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A lead was created (API, batch, upsert, import).
    Created,
    /// A lead's fields changed (PATCH, upsert, import).
    Updated,
    /// A lead was erased.
    Deleted,
}

/// Every event type's name, in [`EventType::ALL`]'s order: what endpoints may subscribe to
/// (and do, when they name none).
pub const NAMES: [&str; 3] = ["lead.created", "lead.updated", "lead.deleted"];

impl EventType {
    /// Every event type, as endpoints subscribe to them by default.
    pub const ALL: [EventType; 3] = [Self::Created, Self::Updated, Self::Deleted];

    /// The name in payloads and subscriptions.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => NAMES[0],
            Self::Updated => NAMES[1],
            Self::Deleted => NAMES[2],
        }
    }
}

impl AsRef<str> for EventType {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// The body of an event: `{"type", "timestamp", "data": {"lead": lead}}`, serialised
/// straight from `lead` (no JSON tree in between).
pub fn payload(
    kind: EventType,
    lead: &impl serde::Serialize,
    at: chrono::DateTime<chrono::Utc>,
) -> String {
    #[derive(serde::Serialize)]
    struct Body<'a, L> {
        r#type: &'static str,
        timestamp: String,
        data: Data<'a, L>,
    }
    #[derive(serde::Serialize)]
    struct Data<'a, L> {
        lead: &'a L,
    }
    let body = Body {
        r#type: kind.as_str(),
        timestamp: crate::time::shown(at),
        data: Data { lead },
    };
    serde_json::to_string(&body).expect("an event body serialises to JSON")
}

/// What an endpoint's filter may test of a lead event: the lead's scalar fields that
/// say where it came from and how good it is.
fn attributes(lead: &Lead) -> Attributes {
    let mut map = Attributes::new();
    map.insert("source".into(), lead.source.clone().into());
    map.insert("industry".into(), lead.industry.clone().into());
    map.insert("status".into(), lead.status.as_str().into());
    map.insert("score".into(), lead.score.into());
    map.insert(
        "api_key_id".into(),
        lead.api_key_id.map(|id| id.to_string()).into(),
    );
    let amount = |money: Option<crate::Money>| {
        money
            .and_then(|m| serde_json::to_value(m).ok())
            .unwrap_or(serde_json::Value::Null)
    };
    map.insert("monthly_revenue".into(), amount(lead.monthly_revenue));
    map.insert("budget".into(), amount(lead.budget));
    map.insert("external_id".into(), lead.external_id.clone().into());
    if let Some((_, domain)) = lead.email.rsplit_once('@') {
        map.insert("email_domain".into(), domain.to_lowercase().into());
    }
    // Only when the lead has them: most leads come without attribution.
    if let Some(attribution) = &lead.attribution {
        let parts = [
            ("attribution.utm_source", &attribution.utm_source),
            ("attribution.utm_medium", &attribution.utm_medium),
            ("attribution.utm_campaign", &attribution.utm_campaign),
        ];
        for (name, value) in parts {
            if let Some(value) = value {
                map.insert(name.into(), value.clone().into());
            }
        }
    }
    map
}

/// The event of `kind` (created or updated) for `lead` as it is now: the payload holds
/// the whole lead object. `None` for a spam lead: no event of any type exists for one
/// until its owner says "Not spam".
pub fn event(kind: EventType, lead: &Lead) -> Option<Event> {
    if lead.spam.is_some() {
        return None;
    }
    Some(made(kind, lead))
}

/// [`event`] of a lead known not to be spam.
fn made(kind: EventType, lead: &Lead) -> Event {
    let at = match kind {
        EventType::Created => lead.created_at,
        _ => lead.updated_at,
    };
    Event {
        id: Uuid::now_v7(),
        kind: kind.as_str(),
        account: lead.user_id,
        subject: lead.id,
        payload: payload(kind, lead, at),
        attributes: attributes(lead),
        at,
    }
}

/// A lead's created or updated event as a write announces it: made into its [`event`]
/// only when the fan-out finds an endpoint of the lead's account subscribed to it
/// ([`Announcement`]). `L` is the lead, owned or borrowed.
#[derive(Debug, Clone)]
pub struct LeadEvent<L = Lead> {
    kind: EventType,
    lead: L,
}

impl<L: Borrow<Lead>> LeadEvent<L> {
    /// The announcement of `lead`'s `kind` event; `None` for a spam lead, which has no
    /// event until its owner says "Not spam".
    pub fn of(kind: EventType, lead: L) -> Option<Self> {
        lead.borrow().spam.is_none().then_some(Self { kind, lead })
    }
}

impl<L: Borrow<Lead>> Announcement for LeadEvent<L> {
    fn account(&self) -> Uuid {
        self.lead.borrow().user_id
    }
    fn kind(&self) -> &'static str {
        self.kind.as_str()
    }
    fn event(&self) -> Cow<'_, Event> {
        Cow::Owned(made(self.kind, self.lead.borrow()))
    }
}

/// A freshly stored row's `lead.created` event, announced: the row becomes a [`Lead`]
/// and its event only when an endpoint of its account receives it.
#[derive(Debug, Clone, Copy)]
pub struct CreatedRow<'a>(&'a lead::Model);

impl Announcement for CreatedRow<'_> {
    fn account(&self) -> Uuid {
        self.0.user_id
    }
    fn kind(&self) -> &'static str {
        EventType::Created.as_str()
    }
    fn event(&self) -> Cow<'_, Event> {
        Cow::Owned(made(EventType::Created, &Lead::from(self.0.clone())))
    }
}

/// The `lead.created` announcements of freshly stored `rows` (none for spam).
pub fn created_rows<'a>(rows: impl IntoIterator<Item = &'a lead::Model>) -> Vec<CreatedRow<'a>> {
    rows.into_iter()
        .filter(|row| !crate::lead::is_quarantined(row))
        .map(CreatedRow)
        .collect()
}

/// The `lead.created` event of a lead its owner released from the spam quarantine: it
/// is announced now, as a new lead would be (its `created_at` stays when it arrived).
pub fn released(lead: &Lead) -> Option<Event> {
    let mut event = event(EventType::Created, lead)?;
    let now = ciq_entity::now();
    event.payload = payload(EventType::Created, lead, now);
    event.at = now;
    Some(event)
}

/// The event of erasing the lead `lead_id` of `user_id`'s account: its payload carries
/// those two ids alone, and it has no attributes (the lead is gone).
pub fn deleted(user_id: Uuid, lead_id: Uuid) -> Event {
    let at = ciq_entity::now();
    let lead = json!({"id": lead_id, "user_id": user_id});
    Event {
        id: Uuid::now_v7(),
        kind: EventType::Deleted.as_str(),
        account: user_id,
        subject: lead_id,
        payload: payload(EventType::Deleted, &lead, at),
        attributes: Attributes::new(),
        at,
    }
}

/// The `codec` of group commit's outbox rows: the created leads' rows, as a JSON array.
pub const LEAD_ROWS: &str = "lead.rows";

/// The readers of every outbox row this domain writes (the delivery workers take them).
pub const CODECS: &[Codec] = &[Codec {
    name: LEAD_ROWS,
    decode: decode_created_rows,
}];

/// The `lead.created` events of freshly stored `rows` (none for spam).
pub fn created<'a>(rows: impl IntoIterator<Item = &'a lead::Model>) -> Vec<Event> {
    rows.into_iter()
        .filter_map(|row| event(EventType::Created, &Lead::from(row.clone())))
        .collect()
}

/// A [`LEAD_ROWS`] row's leads as their `lead.created` events.
fn decode_created_rows(text: &str) -> Result<Vec<Event>, String> {
    let rows: Vec<lead::Model> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(created(&rows))
}

/// The PostgreSQL form for group commit: the batch's created leads (never spam: spam
/// is written on its own) whose account has a subscribed endpoint, as one [`LEAD_ROWS`] outbox row (their rows as JSON) in the
/// same statement as their `INSERT` (`leads_insert`, which this makes return its rows) —
/// one small row per batch on the create path, no payload rendered there; the delivery
/// workers turn it into delivery rows later, off the request path.
pub(crate) fn with_created_outbox(leads_insert: &str) -> String {
    format!(
        "WITH leads_in AS ({leads_insert} RETURNING *) \
         INSERT INTO webhook_outbox (id, created_at, codec, events) \
         SELECT gen_random_uuid(), now(), '{LEAD_ROWS}', json_agg(l)::text FROM leads_in l \
         WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.user_id = l.user_id \
         AND e.enabled AND position('lead.created' in e.events) > 0) HAVING count(*) > 0"
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// A stored lead of `user` as PostgreSQL's json_agg writes it: column names, times
    /// with an offset.
    fn stored_rows(user: Uuid) -> String {
        format!(
            r#"[{{"id":"0193a0b0-0000-7000-8000-000000000001","user_id":"{user}",
            "api_key_id":null,"name":"Jane Doe","email":"jane@example.com","phone":null,
            "source":"API","industry":"Technology","score":7,"status":"qualified",
            "monthly_revenue_cents":5000010,"budget_cents":null,"description":null,
            "created_at":"2026-12-04T11:35:10.123+01:00","external_id":"crm-1",
            "updated_at":"2026-12-04T11:35:10.123+01:00"}}]"#
        )
    }

    #[test]
    fn names_are_the_types_names() {
        for (kind, name) in EventType::ALL.iter().zip(NAMES) {
            assert_eq!(kind.as_str(), name);
        }
    }

    #[test]
    fn group_commits_rows_read_back_as_created_events() {
        let user = Uuid::now_v7();
        let events = decode_created_rows(&stored_rows(user)).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!((event.kind, event.account), ("lead.created", user));
        let body: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(body["timestamp"], "2026-12-04T10:35:10.123Z");
        let lead = &body["data"]["lead"];
        assert_eq!(lead["monthly_revenue"], json!(50000.1));
        assert_eq!(lead["status"], "qualified");
        assert_eq!(lead["external_id"], "crm-1");
        assert_eq!(event.attributes["score"], json!(7));
        assert!(decode_created_rows("[{\"id\": 1}]").is_err());
    }

    #[test]
    fn an_announcement_is_the_event_it_stands_for_and_spam_announces_nothing() {
        let user = Uuid::now_v7();
        let rows: Vec<lead::Model> = serde_json::from_str(&stored_rows(user)).unwrap();
        let lead = Lead::from(rows[0].clone());
        for kind in [EventType::Created, EventType::Updated] {
            let announced = LeadEvent::of(kind, &lead).unwrap();
            assert_eq!(
                (announced.account(), announced.kind()),
                (user, kind.as_str())
            );
            let made = announced.event().into_owned();
            let direct = event(kind, &lead).unwrap();
            assert_eq!(
                (
                    made.kind,
                    made.subject,
                    made.at,
                    &made.payload,
                    &made.attributes
                ),
                (
                    direct.kind,
                    direct.subject,
                    direct.at,
                    &direct.payload,
                    &direct.attributes
                )
            );
        }
        let row = created_rows(&rows)[0];
        assert_eq!((row.account(), row.kind()), (user, "lead.created"));
        assert_eq!(
            row.event().payload,
            event(EventType::Created, &lead).unwrap().payload
        );

        let mut spam = rows[0].clone();
        spam.spam_reason = Some("honeypot".into());
        spam.spam_at = Some(spam.created_at);
        assert!(LeadEvent::of(EventType::Created, Lead::from(spam.clone())).is_none());
        assert!(created_rows([&spam]).is_empty());
    }
}
