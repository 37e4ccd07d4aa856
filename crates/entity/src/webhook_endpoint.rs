//! An account owner's webhook endpoint.

use sea_orm::entity::prelude::*;

/// A row of `webhook_endpoints`: where lead events of the account are sent, which ones,
/// and the signing secret — encrypted with the gateway's webhook key (so a copy of the
/// database alone cannot sign), with the previous secret kept until a rotation's
/// overlap ends.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    /// Endpoint id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The account whose lead events it receives.
    pub user_id: Uuid,
    /// `https://…` (or `http://` where private networks are allowed).
    pub url: String,
    /// The event types it receives, comma-separated (`lead.created,lead.updated`).
    pub events: String,
    /// The signing secret, encrypted (nonce, then ciphertext and tag).
    pub secret: Vec<u8>,
    /// The secret before the last rotation, encrypted, while it still signs.
    pub previous_secret: Option<Vec<u8>>,
    /// Until when the previous secret signs too.
    pub previous_secret_until: Option<DateTimeUtc>,
    /// Whether events are sent to it.
    pub enabled: bool,
    /// Why it was disabled (by its owner, a 410 from it, or days of failures).
    pub disabled_reason: Option<String>,
    /// Since when every delivery to it failed (`None` while the last one succeeded).
    pub failing_since: Option<DateTimeUtc>,
    /// When it was added.
    pub created_at: DateTimeUtc,
    /// When it last changed.
    pub updated_at: DateTimeUtc,
    /// Which events of its types it receives: a filter on the lead's fields as canonical
    /// JSON (ciq-webhooks reads it); `None`: every one.
    pub filter: Option<String>,
    /// What it is for, in its maker's words.
    pub description: Option<String>,
    /// The key that subscribed it through the API; `None` when made in Settings or on
    /// the CLI.
    pub api_key_id: Option<Uuid>,
}

/// Relations of `webhook_endpoints`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// Its deliveries.
    #[sea_orm(has_many = "super::webhook_delivery::Entity")]
    Deliveries,
}

impl Related<super::webhook_delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Deliveries.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
