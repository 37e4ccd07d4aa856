use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KeyEvents::Table)
                    .if_not_exists()
                    .col(uuid(KeyEvents::Id).primary_key())
                    .col(uuid(KeyEvents::UserId))
                    .col(uuid(KeyEvents::KeyId))
                    .col(string_len(KeyEvents::Kind, 16))
                    .col(string_len(KeyEvents::Source, 16))
                    .col(string_len_null(KeyEvents::Address, 64))
                    .col(text_null(KeyEvents::Detail))
                    .col(timestamp_with_time_zone(KeyEvents::At))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_key_events_user")
                            .from(KeyEvents::Table, KeyEvents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_key_events_user_at")
                    .table(KeyEvents::Table)
                    .col(KeyEvents::UserId)
                    .col(KeyEvents::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(KeyEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum KeyEvents {
    Table,
    Id,
    UserId,
    KeyId,
    Kind,
    Source,
    Address,
    Detail,
    At,
}
