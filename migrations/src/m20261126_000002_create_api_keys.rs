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
                    .table(ApiKeys::Table)
                    .if_not_exists()
                    .col(uuid(ApiKeys::Id).primary_key())
                    .col(uuid(ApiKeys::UserId))
                    .col(string_len(ApiKeys::LookupId, 32).unique_key())
                    .col(string_len(ApiKeys::DisplayPrefix, 32))
                    .col(text(ApiKeys::SecretHash))
                    .col(string_len(ApiKeys::Name, 100))
                    .col(integer_null(ApiKeys::RateLimitPerMinute))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone(ApiKeys::UpdatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::ExpiresAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_user")
                            .from(ApiKeys::Table, ApiKeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_keys_user")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::UserId)
                    .to_owned(),
            )
            .await?;
        // Instances poll for keys changed since their last look, to evict caches.
        manager
            .create_index(
                Index::create()
                    .name("idx_api_keys_updated_at")
                    .table(ApiKeys::Table)
                    .col(ApiKeys::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ApiKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum ApiKeys {
    Table,
    Id,
    UserId,
    LookupId,
    DisplayPrefix,
    SecretHash,
    Name,
    RateLimitPerMinute,
    CreatedAt,
    UpdatedAt,
    LastUsedAt,
    ExpiresAt,
    RevokedAt,
}
