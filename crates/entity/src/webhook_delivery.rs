//! One lead event on its way to one endpoint: the outbox row and its delivery log.

use sea_orm::entity::prelude::*;

/// A row of `webhook_deliveries`, written in the transaction of the lead change it
/// tells of; the payload is the body exactly as it is sent on every attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// Delivery id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The account.
    pub user_id: Uuid,
    /// Where it goes.
    pub endpoint_id: Uuid,
    /// The event (`webhook-id`): the same on every attempt and at every endpoint.
    pub event_id: Uuid,
    /// `lead.created`, `lead.updated` or `lead.deleted`.
    pub event_type: String,
    /// The lead it is about.
    pub lead_id: Uuid,
    /// The JSON body.
    pub payload: String,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i32,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: DateTimeUtc,
    /// The instance sending it now.
    pub lease_owner: Option<Uuid>,
    /// Until when that instance holds it.
    pub lease_until: Option<DateTimeUtc>,
    /// The receiver's status code at the last attempt (`None`: no answer).
    pub last_status_code: Option<i32>,
    /// The start of the receiver's answer at the last attempt (truncated).
    pub last_response: Option<String>,
    /// Why the last attempt failed without an answer (timeout, refused address, …).
    pub last_error: Option<String>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTimeUtc>,
    /// When the change happened.
    pub created_at: DateTimeUtc,
    /// When a 2xx came back.
    pub delivered_at: Option<DateTimeUtc>,
}

/// Where a delivery is, stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum DeliveryStatus {
    /// Waiting for an attempt or a retry.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// A 2xx came back.
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// Every attempt used, or the endpoint disabled.
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl DeliveryStatus {
    /// The name the CLI and the pages show.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// Relations of `webhook_deliveries`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The endpoint.
    #[sea_orm(
        belongs_to = "super::webhook_endpoint::Entity",
        from = "Column::EndpointId",
        to = "super::webhook_endpoint::Column::Id"
    )]
    Endpoint,
}

impl Related<super::webhook_endpoint::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Endpoint.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
