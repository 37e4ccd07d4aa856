//! The lead as the domain hands it out: one shape, read from its row, that every
//! rendering of a lead starts from (the API object, the webhook payload).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use ciq_entity::lead::{self, LeadStatus};

use crate::money::Money;

/// A stored lead, as the domain sees it, and its one serialised shape: serialised, it is
/// the lead object of the API (field for field, in the API's order), which the webhook
/// payload carries and ciq-api's object is checked against.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lead {
    /// Lead id (UUIDv7, so ids sort by creation).
    pub id: Uuid,
    /// The account the lead belongs to.
    pub user_id: Uuid,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// E.164 digits without `+`.
    pub phone: Option<String>,
    /// Where the lead came from, as its sender named it.
    pub source: String,
    /// The lead's industry or vertical.
    pub industry: String,
    /// Quality score 1–10.
    pub score: Option<i32>,
    /// Where the lead is in the pipeline.
    pub status: LeadStatus,
    /// Estimated monthly revenue (exact to the cent).
    pub monthly_revenue: Option<Money>,
    /// Budget (exact to the cent).
    pub budget: Option<Money>,
    /// Free-text notes.
    pub description: Option<String>,
    /// The client's own id for it, unique per account.
    pub external_id: Option<String>,
    /// The key that created it (`None`: imported by the owner in Settings).
    pub api_key_id: Option<Uuid>,
    /// When it was stored (millisecond precision).
    #[serde(serialize_with = "serialize_time")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(serialize_with = "serialize_time")]
    pub updated_at: DateTime<Utc>,
}

/// [`time`], for serde.
fn serialize_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time(*t))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_serialises_as_the_api_writes_it() {
        let at = DateTime::<Utc>::from_timestamp_millis(1_764_547_200_123).unwrap();
        let lead = Lead {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            name: "Jane Doe".into(),
            email: "jane@example.com".into(),
            phone: None,
            source: "API".into(),
            industry: "Technology".into(),
            score: Some(7),
            status: LeadStatus::Qualified,
            monthly_revenue: Some(Money { cents: 5_000_010 }),
            budget: Some(Money { cents: 1_000_000 }),
            description: None,
            external_id: Some("crm-1".into()),
            api_key_id: None,
            created_at: at,
            updated_at: at,
        };
        let json = serde_json::to_value(&lead).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "user_id",
                "name",
                "email",
                "phone",
                "source",
                "industry",
                "score",
                "status",
                "monthly_revenue",
                "budget",
                "description",
                "external_id",
                "api_key_id",
                "created_at",
                "updated_at"
            ]
        );
        assert_eq!(json["status"], "qualified");
        assert_eq!(json["monthly_revenue"].to_string(), "50000.1");
        assert_eq!(json["budget"].to_string(), "10000");
        assert_eq!(json["created_at"], "2025-12-01T00:00:00.123Z");
        assert_eq!(json["phone"], serde_json::Value::Null);
    }
}
