//! An account owner: the tenant every lead and key belongs to.

use sea_orm::entity::prelude::*;

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Primary key (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Sign-in email, stored lower-cased; unique.
    #[sea_orm(unique)]
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// argon2id PHC string of the owner's password, when one was set.
    pub password_hash: Option<String>,
    /// When the account was created.
    pub created_at: DateTimeUtc,
    /// Sessions that started before this instant are over (a password change or
    /// "sign out everywhere" sets it), whichever store holds them.
    pub sessions_valid_after: Option<DateTimeUtc>,
}

/// Relations of `users`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The user's API keys.
    #[sea_orm(has_many = "super::api_key::Entity")]
    ApiKeys,
    /// The user's leads.
    #[sea_orm(has_many = "super::lead::Entity")]
    Leads,
}

impl Related<super::api_key::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ApiKeys.def()
    }
}

impl Related<super::lead::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Leads.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
