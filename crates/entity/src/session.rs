//! A signed-in account owner's session (Settings pages).

use sea_orm::entity::prelude::*;

/// A row of `sessions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// BLAKE2s (hex) of the session cookie's token; the token itself is not stored.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Who is signed in.
    pub user_id: Uuid,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    /// Signed in at.
    pub created_at: DateTimeUtc,
    /// The session ends at this instant.
    pub expires_at: DateTimeUtc,
}

/// Relations of `sessions`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
