use sea_orm_migration::{prelude::*, schema::*};

/// The leads a remembered batch answer holds, by their place in it: erasing one of them
/// empties that item of the answer (a replay then answers it 410) without reading every
/// remembered answer of the account. Purged with the answers (same `created_at`).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyLeads::Table)
                    .col(uuid(IdempotencyLeads::UserId))
                    .col(string_len(IdempotencyLeads::Key, 255))
                    .col(uuid(IdempotencyLeads::LeadId))
                    .col(integer(IdempotencyLeads::Item))
                    .col(timestamp_with_time_zone(IdempotencyLeads::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyLeads::UserId)
                            .col(IdempotencyLeads::LeadId)
                            .col(IdempotencyLeads::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_leads_created")
                    .table(IdempotencyLeads::Table)
                    .col(IdempotencyLeads::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyLeads::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum IdempotencyLeads {
    Table,
    UserId,
    Key,
    LeadId,
    Item,
    CreatedAt,
}
