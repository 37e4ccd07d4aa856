use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// Settings' lead search (the name or the email starts with what the owner typed, any
/// case) reads an index on each of `lower(name)` and `lower(email)` within the account,
/// as a range of bytes. On PostgreSQL that needs the pattern operator class (a range in
/// the database's collation is not a prefix), so the email index made by migration
/// 000011 is made again with it; it still serves the API's exact `email` filter. SQLite
/// compares bytes already: its email index stays, and only the name gets one.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: &[&str] = match manager.get_database_backend() {
            DatabaseBackend::Postgres => &[
                "CREATE INDEX idx_leads_user_name_prefix ON leads \
                 (user_id, lower(name) text_pattern_ops)",
                "DROP INDEX idx_leads_user_email",
                "CREATE INDEX idx_leads_user_email ON leads \
                 (user_id, lower(email) text_pattern_ops)",
            ],
            _ => &["CREATE INDEX idx_leads_user_name_prefix ON leads (user_id, lower(name))"],
        };
        run(manager, statements).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: &[&str] = match manager.get_database_backend() {
            DatabaseBackend::Postgres => &[
                "DROP INDEX idx_leads_user_name_prefix",
                "DROP INDEX idx_leads_user_email",
                "CREATE INDEX idx_leads_user_email ON leads (user_id, LOWER(email))",
            ],
            _ => &["DROP INDEX idx_leads_user_name_prefix"],
        };
        run(manager, statements).await
    }
}

/// Runs `statements` in order.
async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    for statement in statements {
        manager
            .get_connection()
            .execute_unprepared(statement)
            .await?;
    }
    Ok(())
}
