use sea_orm_migration::prelude::*;

/// The list's `email` filter (exact, any case) reads this index instead of walking the
/// account's whole keyset index: on an account of a million leads that is the
/// difference between a few index entries and a million. An expression index, which
/// PostgreSQL and SQLite both have; the filter's `LOWER("email")` matches it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_leads_user_email ON leads (user_id, LOWER(email))",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX idx_leads_user_email")
            .await
            .map(|_| ())
    }
}
