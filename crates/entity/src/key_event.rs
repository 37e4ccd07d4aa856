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
    /// `created`, `rolled` or `revoked`.
    pub kind: String,
    /// Where the change came from: `cli`, `admin_api` or `settings`.
    pub source: String,
    /// Client address of the change, when it came over HTTP.
    pub address: Option<String>,
    /// Extra words, e.g. the overlap of a roll.
    pub detail: Option<String>,
    /// When it happened.
    pub at: DateTimeUtc,
}

/// Relations of `key_events`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
