use sea_orm_migration::prelude::*;

/// `external_id` stays unique per account, but the index holds only the leads that have
/// one: most leads have none, and each of those no longer pays for an entry. The new
/// index is built before the old one goes, so uniqueness never lapses. Lookups by
/// external id (`external_id = ...` implies `IS NOT NULL`) and the batch's and upsert's
/// `ON CONFLICT (user_id, external_id) WHERE external_id IS NOT NULL` use it.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX idx_leads_user_external_id_set ON leads (user_id, external_id) \
             WHERE external_id IS NOT NULL",
        )
        .await?;
        db.execute_unprepared("DROP INDEX idx_leads_user_external_id")
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX idx_leads_user_external_id ON leads (user_id, external_id)",
        )
        .await?;
        db.execute_unprepared("DROP INDEX idx_leads_user_external_id_set")
            .await
            .map(|_| ())
    }
}
