use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000002_create_api_keys::ApiKeys;

/// `api_keys.version`: bumped by every change to a key (revoke, roll, expiry), so a
/// cached verification built from an older row can be told apart from a current one
/// without comparing any instance's clock.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .add_column(big_integer(ApiKeysVersion::Version).default(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ApiKeys::Table)
                    .drop_column(ApiKeysVersion::Version)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ApiKeysVersion {
    Version,
}
