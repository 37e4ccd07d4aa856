use sea_orm_migration::{prelude::*, schema::*};

/// Browser keys: the web origins a `leads:create`-only key may be used from,
/// space-separated, each `scheme://host[:port]`. Every existing key has none, so it
/// keeps working exactly as before (servers and scripts send no `Origin`).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(text(ApiKeys::AllowedOrigins).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(ApiKeys::AllowedOrigins)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    AllowedOrigins,
}
