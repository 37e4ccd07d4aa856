use sea_orm_migration::{prelude::*, schema::*};

/// CSV imports by account owners (Settings → Leads → Import): the import and its file
/// (kept only until the import is done, so any instance can resume it), its position
/// (committed with the rows it covers), its lease (which instance works on it, until
/// when), and the rows that failed with their line and reason. An imported lead was
/// created by no key: `leads.api_key_id` becomes optional.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LeadImports::Table)
                    .col(uuid(LeadImports::Id).primary_key())
                    .col(uuid(LeadImports::UserId))
                    .col(string_len(LeadImports::FileName, 255))
                    .col(string_len(LeadImports::Status, 16))
                    .col(text(LeadImports::Columns))
                    .col(text(LeadImports::Mapping))
                    .col(blob_null(LeadImports::Content))
                    .col(integer(LeadImports::TotalRows))
                    .col(integer(LeadImports::Position))
                    .col(integer(LeadImports::CreatedCount))
                    .col(integer(LeadImports::UpdatedCount))
                    .col(integer(LeadImports::FailedCount))
                    .col(text_null(LeadImports::Error))
                    .col(uuid_null(LeadImports::LeaseOwner))
                    .col(timestamp_with_time_zone_null(LeadImports::LeaseUntil))
                    .col(timestamp_with_time_zone(LeadImports::CreatedAt))
                    .col(timestamp_with_time_zone(LeadImports::UpdatedAt))
                    .col(timestamp_with_time_zone_null(LeadImports::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LeadImports::Table, LeadImports::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lead_imports_user_created")
                    .table(LeadImports::Table)
                    .col(LeadImports::UserId)
                    .col(LeadImports::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // The workers look for imports to take by status.
        manager
            .create_index(
                Index::create()
                    .name("idx_lead_imports_status")
                    .table(LeadImports::Table)
                    .col(LeadImports::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LeadImportFailures::Table)
                    .col(uuid(LeadImportFailures::ImportId))
                    .col(integer(LeadImportFailures::Line))
                    .col(text(LeadImportFailures::Reason))
                    .col(text(LeadImportFailures::Record))
                    .primary_key(
                        Index::create()
                            .col(LeadImportFailures::ImportId)
                            .col(LeadImportFailures::Line),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(LeadImportFailures::Table, LeadImportFailures::ImportId)
                            .to(LeadImports::Table, LeadImports::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        set_api_key_id_required(manager, false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Imported leads have no key to fall back to: they go with the imports.
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM leads WHERE api_key_id IS NULL")
            .await?;
        set_api_key_id_required(manager, true).await?;
        for table in [
            LeadImportFailures::Table.into_table_ref(),
            LeadImports::Table.into_table_ref(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Makes `leads.api_key_id` NOT NULL (`required`) or optional. PostgreSQL alters the
/// column; SQLite cannot, so the table is rebuilt from its own definition (with the
/// constraint changed), its rows copied and its indexes made again — nothing refers
/// to `leads`, so the rebuild drops no one's rows.
async fn set_api_key_id_required(manager: &SchemaManager<'_>, required: bool) -> Result<(), DbErr> {
    let db = manager.get_connection();
    match manager.get_database_backend() {
        sea_orm::DatabaseBackend::Sqlite => {
            let table_sql = |row: sea_orm::QueryResult| row.try_get::<String>("", "sql");
            let found = db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DatabaseBackend::Sqlite,
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'leads'",
                ))
                .await?
                .ok_or_else(|| DbErr::Migration("table leads is missing".into()))?;
            let definition = table_sql(found)?;
            let (from, to) = (
                "\"api_key_id\" uuid_text NOT NULL",
                "\"api_key_id\" uuid_text",
            );
            let (from, to) = if required { (to, from) } else { (from, to) };
            if !definition.contains(from) {
                return Err(DbErr::Migration(format!(
                    "leads.api_key_id is not defined as expected ({from}): {definition}"
                )));
            }
            let rebuilt = definition.replacen(from, to, 1).replacen(
                "CREATE TABLE \"leads\"",
                "CREATE TABLE \"leads_rebuilt\"",
                1,
            );
            let indexes = db
                .query_all_raw(sea_orm::Statement::from_string(
                    sea_orm::DatabaseBackend::Sqlite,
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leads' \
                     AND sql IS NOT NULL",
                ))
                .await?
                .into_iter()
                .map(table_sql)
                .collect::<Result<Vec<_>, _>>()?;
            // One script on one connection: the pool's other connections would each
            // see the schema from before the drop until they read it again.
            let mut script = vec![
                rebuilt,
                "INSERT INTO leads_rebuilt SELECT * FROM leads".to_owned(),
                "DROP TABLE leads".to_owned(),
                "ALTER TABLE leads_rebuilt RENAME TO leads".to_owned(),
            ];
            script.extend(indexes);
            db.execute_unprepared(&script.join(";\n")).await?;
        }
        _ => {
            let change = if required { "SET" } else { "DROP" };
            db.execute_unprepared(&format!(
                "ALTER TABLE leads ALTER COLUMN api_key_id {change} NOT NULL"
            ))
            .await?;
        }
    }
    Ok(())
}

#[derive(DeriveIden)]
enum LeadImports {
    Table,
    Id,
    UserId,
    FileName,
    Status,
    Columns,
    Mapping,
    Content,
    TotalRows,
    Position,
    CreatedCount,
    UpdatedCount,
    FailedCount,
    Error,
    LeaseOwner,
    LeaseUntil,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum LeadImportFailures {
    Table,
    ImportId,
    Line,
    Reason,
    Record,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
