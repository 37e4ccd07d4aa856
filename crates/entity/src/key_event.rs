//! The history of a user's keys: created, rolled, revoked — when, how, from where.

use sea_orm::entity::prelude::*;

/// A row of `key_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "key_events")]
pub struct Model {
    /// Primary key (UUIDv7, so ids sort by time).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The key's owner.
    pub user_id: Uuid,
    /// The key the event is about.
    pub key_id: Uuid,
    /// What happened.
    pub kind: KeyEventKind,
    /// Where the change came from.
    pub source: ActorSource,
    /// Client address of the change, when it came over HTTP.
    pub address: Option<String>,
    /// Extra words, e.g. the overlap of a roll.
    pub detail: Option<String>,
    /// When it happened.
    pub at: DateTimeUtc,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum KeyEventKind {
    /// Generated.
    #[sea_orm(string_value = "created")]
    Created,
    /// Replaced by a successor (the event is on the old key).
    #[sea_orm(string_value = "rolled")]
    Rolled,
    /// Refused from now on, by its owner or an operator.
    #[sea_orm(string_value = "revoked")]
    Revoked,
    /// Its settings changed (name, limits, origins, challenge): the detail says which.
    #[sea_orm(string_value = "updated")]
    Updated,
}

impl KeyEventKind {
    /// The stored and shown name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Rolled => "rolled",
            Self::Revoked => "revoked",
            Self::Updated => "updated",
        }
    }
}

/// Where a change to a key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ActorSource {
    /// The `ciq-gateway` command line.
    #[sea_orm(string_value = "cli")]
    Cli,
    /// The operator API (`/admin/v1`).
    #[sea_orm(string_value = "admin_api")]
    AdminApi,
    /// The owner's Settings pages.
    #[sea_orm(string_value = "settings")]
    Settings,
}

impl ActorSource {
    /// The stored and shown name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::AdminApi => "admin_api",
            Self::Settings => "settings",
        }
    }
}

/// Relations of `key_events`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
