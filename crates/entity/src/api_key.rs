//! A `ciq_` API key. Only its argon2id hash is stored, never the key itself.

use sea_orm::entity::prelude::*;

/// A row of `api_keys`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// Primary key (UUIDv7); the id operators and the CLI use to revoke a key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owner.
    pub user_id: Uuid,
    /// Public lookup id embedded in the key; unique. Finding a key by it means
    /// verification never scans hashes.
    #[sea_orm(unique)]
    pub lookup_id: String,
    /// What the owner sees to recognise the key (`ciq_` + the start of the key).
    pub display_prefix: String,
    /// argon2id PHC string of the key's secret part.
    pub secret_hash: String,
    /// Name the owner gave the key.
    pub name: String,
    /// Per-key override of the requests-per-minute limit.
    pub rate_limit_per_minute: Option<i32>,
    /// When the key was created.
    pub created_at: DateTimeUtc,
    /// When the key last changed (revoke, expiry), on the database's clock (never a
    /// writer's): instances poll it to find what changed.
    pub updated_at: DateTimeUtc,
    /// Last time the key authenticated a request (coalesced, not per request).
    pub last_used_at: Option<DateTimeUtc>,
    /// The key stops working at this instant.
    pub expires_at: Option<DateTimeUtc>,
    /// The key was revoked at this instant.
    pub revoked_at: Option<DateTimeUtc>,
    /// Bumped by every change: a cached verification built from an older version is
    /// stale, whatever any clock says.
    pub version: i64,
    /// What the key may do, space-separated (`leads:create leads:read leads:write`).
    pub scopes: String,
    /// Web origins the key may be used from (`https://www.example.com`), space-separated;
    /// empty for a key meant for servers. Only `leads:create`-only keys have any.
    pub allowed_origins: String,
    /// Per-key override of the browser submissions one client address may make per
    /// minute (`NULL`: the gateway's default). Only keys with allowed origins use it.
    pub visitor_rate_limit_per_minute: Option<i32>,
    /// The challenge browser submissions with this key must pass (`turnstile`,
    /// `hcaptcha`, `recaptcha`); `None`: no challenge.
    pub challenge_provider: Option<String>,
    /// The provider's secret, sealed under the gateway's secret key and bound to this
    /// row's id; never shown again.
    pub challenge_secret: Option<Vec<u8>>,
}

/// Relations of `api_keys`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The key's owner.
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
