//! A one-time link that lets an owner choose a password (`users reset-link`).

use sea_orm::entity::prelude::*;

/// A row of `password_resets`: at most one per user.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "password_resets")]
pub struct Model {
    /// BLAKE2s (hex) of the link's token; the token itself is not stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    /// Whose password the link sets.
    #[sea_orm(unique)]
    pub user_id: Uuid,
    /// Made at.
    pub created_at: DateTimeUtc,
    /// The link stops working at this instant.
    pub expires_at: DateTimeUtc,
}

/// Relations of `password_resets`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
