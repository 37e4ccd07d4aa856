use sea_orm_migration::prelude::*;

/// The outbox holds rows of more than one form: `codec` names the domain's reader of a
/// row's `events` (ciq-webhooks knows no domain, so the row must say). Rows written
/// before this migration all hold group commit's created leads, the default's form.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookOutbox::Table)
                    .add_column(
                        ColumnDef::new(WebhookOutbox::Codec)
                            .text()
                            .not_null()
                            .default("lead.rows"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookOutbox::Table)
                    .drop_column(WebhookOutbox::Codec)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum WebhookOutbox {
    Table,
    Codec,
}
