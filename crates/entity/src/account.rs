//! Tenant scoping in one place: every table whose rows belong to one account starts its
//! queries here, so the account is part of the query itself — another account's row is
//! never read and then refused, it is simply not found (svix's `secure_find`).

use sea_orm::{
    ColumnTrait, DeleteMany, EntityTrait, PrimaryKeyTrait, QueryFilter, Select, UpdateMany,
};
use uuid::Uuid;

/// A table whose every row belongs to one account, named by its `user_id` column.
pub trait AccountScoped: EntityTrait {
    /// The column that holds the row's account.
    fn account_column() -> Self::Column;

    /// Every row of `user_id`'s account.
    fn in_account(user_id: Uuid) -> Select<Self> {
        Self::find().filter(Self::account_column().eq(user_id))
    }

    /// The row `id` if it is `user_id`'s: another account's id finds nothing, exactly
    /// like a missing one.
    fn find_in_account(user_id: Uuid, id: Uuid) -> Select<Self>
    where
        <Self::PrimaryKey as PrimaryKeyTrait>::ValueType: From<Uuid>,
    {
        Self::find_by_id(id).filter(Self::account_column().eq(user_id))
    }

    /// An update of rows of `user_id`'s account only (more filters narrow it).
    fn update_in_account(user_id: Uuid) -> UpdateMany<Self> {
        Self::update_many().filter(Self::account_column().eq(user_id))
    }

    /// A delete of rows of `user_id`'s account only (more filters narrow it).
    fn delete_in_account(user_id: Uuid) -> DeleteMany<Self> {
        Self::delete_many().filter(Self::account_column().eq(user_id))
    }
}

macro_rules! account_scoped {
    ($($table:ident),* $(,)?) => {
        $(
            impl AccountScoped for crate::$table::Entity {
                fn account_column() -> Self::Column {
                    crate::$table::Column::UserId
                }
            }
        )*
    };
}

account_scoped!(
    api_key,
    key_event,
    lead,
    idempotency_key,
    idempotency_lead,
    lead_import,
    session,
    spam_block,
    key_usage,
    request_log,
    webhook_delivery,
    webhook_endpoint,
);
