use sea_orm_migration::prelude::*;

/// Attribution and consent of a lead, each one column of JSON text set when the lead is
/// created (`NULL` when it came without, which every existing lead did). The list's
/// `utm_source` filter is served by a partial expression index: leads without
/// attribution (every lead a server integration sends) pay nothing for it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [Leads::Attribution, Leads::Consent] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Leads::Table)
                        .add_column(ColumnDef::new(column).text().null())
                        .to_owned(),
                )
                .await?;
        }
        let source = match manager.get_database_backend() {
            sea_orm_migration::sea_orm::DatabaseBackend::Postgres => {
                "lower(attribution::jsonb ->> 'utm_source')"
            }
            _ => "lower(json_extract(attribution, '$.utm_source'))",
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX idx_leads_user_utm_source ON leads (user_id, ({source})) \
                 WHERE attribution IS NOT NULL"
            ))
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX idx_leads_user_utm_source")
            .await?;
        for column in [Leads::Consent, Leads::Attribution] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Leads::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Leads {
    Table,
    Attribution,
    Consent,
}
