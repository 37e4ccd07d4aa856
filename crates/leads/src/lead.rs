//! The lead as the domain hands it out: one shape, read from its row, that every
//! rendering of a lead starts from (the API object, the webhook payload).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use ciq_entity::lead::{self, LeadStatus};

use crate::money::Money;

/// A stored lead, as the domain sees it (each surface maps it to its own object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// Lead id (UUIDv7, so ids sort by creation).
    pub id: Uuid,
    /// The account the lead belongs to.
    pub user_id: Uuid,
    /// The key that created it (`None`: imported by the owner in Settings).
    pub api_key_id: Option<Uuid>,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// E.164 digits without `+`.
    pub phone: Option<String>,
    /// Source.
    pub source: String,
    /// Industry.
    pub industry: String,
    /// Score 1–10.
    pub score: Option<i32>,
    /// Pipeline status.
    pub status: LeadStatus,
    /// Monthly revenue.
    pub monthly_revenue: Option<Money>,
    /// Budget.
    pub budget: Option<Money>,
    /// Notes.
    pub description: Option<String>,
    /// When it was stored (millisecond precision).
    pub created_at: DateTime<Utc>,
    /// The client's own id for it, unique per account.
    pub external_id: Option<String>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<lead::Model> for Lead {
    fn from(row: lead::Model) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            api_key_id: row.api_key_id,
            name: row.name,
            email: row.email,
            phone: row.phone,
            source: row.source,
            industry: row.industry,
            score: row.score,
            status: row.status,
            monthly_revenue: row.monthly_revenue_cents.map(|cents| Money { cents }),
            budget: row.budget_cents.map(|cents| Money { cents }),
            description: row.description,
            created_at: row.created_at,
            external_id: row.external_id,
            updated_at: row.updated_at.unwrap_or(row.created_at),
        }
    }
}

/// A time as every answer writes it: RFC 3339, UTC, milliseconds, `Z`.
pub(crate) fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The lead object of the API, for payloads (ciq-api checks that the two agree).
pub fn lead_json(lead: &Lead) -> Value {
    let money = |m: Option<Money>| m.map(|m| Value::Number(m.to_number()));
    json!({
        "id": lead.id,
        "user_id": lead.user_id,
        "name": lead.name,
        "email": lead.email,
        "phone": lead.phone,
        "source": lead.source,
        "industry": lead.industry,
        "score": lead.score,
        "status": lead.status.as_str(),
        "monthly_revenue": money(lead.monthly_revenue),
        "budget": money(lead.budget),
        "description": lead.description,
        "external_id": lead.external_id,
        "api_key_id": lead.api_key_id,
        "created_at": time(lead.created_at),
        "updated_at": time(lead.updated_at),
    })
}
