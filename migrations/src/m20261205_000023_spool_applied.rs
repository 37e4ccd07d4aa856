use sea_orm_migration::{prelude::*, schema::*};

/// The outage spool's drained entries: each entry a drain applied, recorded in the
/// transaction that stored its leads. A drain skips the entries named here, so an entry
/// re-read after a crash between the commit and Redis's acknowledgement stores nothing
/// twice, and a lead erased after its drain never comes back. Purged after a week (an
/// entry is acknowledged seconds after it is applied).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SpoolApplied::Table)
                    .if_not_exists()
                    .col(string_len(SpoolApplied::Entry, 64).primary_key())
                    .col(uuid(SpoolApplied::UserId))
                    .col(timestamp_with_time_zone(SpoolApplied::AppliedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_spool_applied_at")
                    .table(SpoolApplied::Table)
                    .col(SpoolApplied::AppliedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SpoolApplied::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SpoolApplied {
    Table,
    Entry,
    UserId,
    AppliedAt,
}
