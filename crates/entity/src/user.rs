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

/// Takes account `user_id`'s row for the rest of the transaction `txn` (a row lock on
/// PostgreSQL, the write lock on SQLite), so capped changes of one account (its keys,
/// its imports) happen one at a time; `false`: no such account.
pub async fn lock(txn: &impl ConnectionTrait, user_id: Uuid) -> Result<bool, DbErr> {
    use sea_orm::sea_query::Expr;
    let locked = Entity::update_many()
        .col_expr(Column::Email, Expr::col(Column::Email))
        .filter(Column::Id.eq(user_id))
        .exec(txn)
        .await?;
    Ok(locked.rows_affected == 1)
}
