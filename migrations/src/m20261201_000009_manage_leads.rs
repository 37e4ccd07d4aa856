use sea_orm_migration::{prelude::*, schema::*};

/// Managing leads: key scopes (every existing key keeps exactly what it could do,
/// `leads:create`), a lead's `external_id` (unique per account) and `updated_at`
/// (existing leads: their creation time), the keyset-paging index, and the lead an
/// idempotent answer holds (so that erasing the lead can empty the answer).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let add = |table: TableRef, column: ColumnDef| {
            Table::alter().table(table).add_column(column).to_owned()
        };
        manager
            .alter_table(add(
                ApiKeys::Table.into_table_ref(),
                string_len(ApiKeys::Scopes, 100)
                    .default("leads:create")
                    .to_owned(),
            ))
            .await?;
        manager
            .alter_table(add(
                Leads::Table.into_table_ref(),
                string_len_null(Leads::ExternalId, 255),
            ))
            .await?;
        manager
            .alter_table(add(
                Leads::Table.into_table_ref(),
                timestamp_with_time_zone_null(Leads::UpdatedAt),
            ))
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Leads::Table)
                    .value(Leads::UpdatedAt, Expr::col(Leads::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(add(
                IdempotencyKeys::Table.into_table_ref(),
                uuid_null(IdempotencyKeys::LeadId),
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_leads_user_external_id")
                    .table(Leads::Table)
                    .col(Leads::UserId)
                    .col(Leads::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Newest first, ties broken by id: the keyset every page walks.
        manager
            .create_index(
                Index::create()
                    .name("idx_leads_user_created_id")
                    .table(Leads::Table)
                    .col(Leads::UserId)
                    .col(Leads::CreatedAt)
                    .col(Leads::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_leads_user_created")
                    .table(Leads::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_leads_user_created")
                    .table(Leads::Table)
                    .col(Leads::UserId)
                    .col(Leads::CreatedAt)
                    .to_owned(),
            )
            .await?;
        for name in ["idx_leads_user_created_id", "idx_leads_user_external_id"] {
            manager
                .drop_index(Index::drop().name(name).table(Leads::Table).to_owned())
                .await?;
        }
        let drop = |table: TableRef, column: DynIden| {
            Table::alter().table(table).drop_column(column).to_owned()
        };
        manager
            .alter_table(drop(
                IdempotencyKeys::Table.into_table_ref(),
                IdempotencyKeys::LeadId.into_iden(),
            ))
            .await?;
        for column in [Leads::UpdatedAt, Leads::ExternalId] {
            manager
                .alter_table(drop(Leads::Table.into_table_ref(), column.into_iden()))
                .await?;
        }
        manager
            .alter_table(drop(
                ApiKeys::Table.into_table_ref(),
                ApiKeys::Scopes.into_iden(),
            ))
            .await
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Scopes,
}

#[derive(DeriveIden)]
enum Leads {
    Table,
    Id,
    UserId,
    CreatedAt,
    ExternalId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    LeadId,
}
