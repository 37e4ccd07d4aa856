use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;
use crate::m20261126_000002_create_api_keys::ApiKeys;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Leads::Table)
                    .if_not_exists()
                    .col(uuid(Leads::Id).primary_key())
                    .col(uuid(Leads::UserId))
                    .col(uuid(Leads::ApiKeyId))
                    .col(string_len(Leads::Name, 200))
                    .col(string_len(Leads::Email, 254))
                    .col(string_len_null(Leads::Phone, 15))
                    .col(string_len(Leads::Source, 100))
                    .col(string_len(Leads::Industry, 100))
                    .col(integer_null(Leads::Score))
                    .col(string_len(Leads::Status, 16))
                    // Money in whole cents: exact on every backend.
                    .col(big_integer_null(Leads::MonthlyRevenueCents))
                    .col(big_integer_null(Leads::BudgetCents))
                    .col(text_null(Leads::Description))
                    .col(timestamp_with_time_zone(Leads::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_leads_user")
                            .from(Leads::Table, Leads::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_leads_api_key")
                            .from(Leads::Table, Leads::ApiKeyId)
                            .to(ApiKeys::Table, ApiKeys::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_leads_user_created")
                    .table(Leads::Table)
                    .col(Leads::UserId)
                    .col(Leads::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Leads::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Leads {
    Table,
    Id,
    UserId,
    ApiKeyId,
    Name,
    Email,
    Phone,
    Source,
    Industry,
    Score,
    Status,
    MonthlyRevenueCents,
    BudgetCents,
    Description,
    CreatedAt,
}
