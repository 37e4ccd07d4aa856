use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

/// `users.sessions_valid_after`: sessions started before it are over (set by a
/// password change and by "sign out everywhere"), in every session store at once.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(
                        UsersSessions::SessionsValidAfter,
                    ))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(UsersSessions::SessionsValidAfter)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum UsersSessions {
    SessionsValidAfter,
}
