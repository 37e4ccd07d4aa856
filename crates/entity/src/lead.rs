//! A lead created through the external API.

use sea_orm::entity::prelude::*;

/// A row of `leads`.
///
/// Money is stored as whole cents in a 64-bit integer: exact on every backend,
/// so `50000.10` is read back as `50000.10`, never `50000.0999`. Deserialises from the
/// row as PostgreSQL's `row_to_json` writes it (group commit's webhook outbox), and
/// serialises to the same shape (the outage spool keeps rows as JSON until they drain).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize, serde::Serialize)]
#[sea_orm(table_name = "leads")]
pub struct Model {
    /// Primary key (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The tenant: owner of the key that created the lead.
    pub user_id: Uuid,
    /// The key that created the lead; `None` for a lead its owner imported in Settings.
    pub api_key_id: Option<Uuid>,
    /// Lead's full name.
    pub name: String,
    /// Lead's email address.
    pub email: String,
    /// E.164 digits without `+`.
    pub phone: Option<String>,
    /// Lead source.
    pub source: String,
    /// Industry or vertical.
    pub industry: String,
    /// Quality score 1–10.
    pub score: Option<i32>,
    /// Where the lead is in the pipeline.
    pub status: LeadStatus,
    /// Estimated monthly revenue in cents.
    pub monthly_revenue_cents: Option<i64>,
    /// Budget in cents.
    pub budget_cents: Option<i64>,
    /// Additional notes.
    pub description: Option<String>,
    /// When the lead was stored (millisecond precision).
    pub created_at: DateTimeUtc,
    /// The client's own id for the lead, unique per account.
    pub external_id: Option<String>,
    /// When the lead last changed (the creation time until then).
    pub updated_at: Option<DateTimeUtc>,
    /// Why the lead is quarantined as spam (`honeypot`, `link_in_name`, …); `None` for a
    /// normal lead. A spam lead is out of lists, exports and charts and has no events.
    #[serde(default)]
    pub spam_reason: Option<String>,
    /// When it was judged spam (set together with `spam_reason`).
    #[serde(default)]
    pub spam_at: Option<DateTimeUtc>,
    /// First-touch attribution (UTM parameters, click ids, page, referrer) as JSON text;
    /// set when the lead is created, never changed.
    #[serde(default)]
    pub attribution: Option<String>,
    /// Consent as JSON text (`text`, `granted`, `granted_at`, `ip`); set when the lead is
    /// created, never changed.
    #[serde(default)]
    pub consent: Option<String>,
}

/// Where a lead is in the pipeline, stored as its lower-case name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    EnumIter,
    DeriveActiveEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum LeadStatus {
    /// Not contacted yet (the default).
    #[default]
    #[sea_orm(string_value = "new")]
    New,
    /// Reached at least once; no verdict yet.
    #[sea_orm(string_value = "contacted")]
    Contacted,
    /// Judged a real prospect.
    #[sea_orm(string_value = "qualified")]
    Qualified,
    /// No sale will come of it.
    #[sea_orm(string_value = "lost")]
    Lost,
}

impl LeadStatus {
    /// Every status, the default first.
    pub const ALL: [LeadStatus; 4] = [Self::New, Self::Contacted, Self::Qualified, Self::Lost];

    /// The name clients send and see.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Contacted => "contacted",
            Self::Qualified => "qualified",
            Self::Lost => "lost",
        }
    }

    /// The status named `name`, exactly (case matters).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Relations of `leads`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The tenant.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
    /// The creating key.
    #[sea_orm(
        belongs_to = "super::api_key::Entity",
        from = "Column::ApiKeyId",
        to = "super::api_key::Column::Id"
    )]
    ApiKey,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
