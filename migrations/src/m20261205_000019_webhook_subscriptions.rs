use sea_orm_migration::prelude::*;

/// Webhook subscriptions through the API: an endpoint may carry a filter (canonical
/// JSON; `NULL`: every event of its types), a description, and the key that made it
/// (`NULL`: made in Settings or on the CLI). Every existing endpoint keeps receiving
/// what it received.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            ColumnDef::new(WebhookEndpoints::Filter)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(WebhookEndpoints::Description)
                .string_len(500)
                .null()
                .to_owned(),
            ColumnDef::new(WebhookEndpoints::ApiKeyId)
                .uuid()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WebhookEndpoints::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            WebhookEndpoints::ApiKeyId,
            WebhookEndpoints::Description,
            WebhookEndpoints::Filter,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(WebhookEndpoints::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Filter,
    Description,
    ApiKeyId,
}
