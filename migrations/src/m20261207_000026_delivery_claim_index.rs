use sea_orm_migration::prelude::*;

/// The claim's index holds pending deliveries only.
///
/// A delivery is written three times: fanned out (pending), leased (owner and expiry),
/// settled (delivered, failed, or pending again later). Each write is a new version of
/// the row with an entry in each index, and the claim's index, `(endpoint_id, status,
/// next_attempt_at)`, kept every settled version's entry as well: the table's history
/// grew the index every claim descends and every write updates. Now the claim's index,
/// `idx_webhook_deliveries_due`, is `(endpoint_id, next_attempt_at) WHERE status =
/// 'pending'`: a settled delivery adds no entry to it, and it stays the size of the
/// backlog whatever the history. Every query naming `status = 'pending'` — the claim,
/// the gauges, failing an endpoint's pending deliveries — can use it. (Also tried: the
/// table's pages filled to half, so that a lease, which changes no indexed column, is
/// written beside its row with no index entry. No faster in `bench/webhooks
/// --delivery-ab`, and the table a third larger: not done.)
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        swap(
            manager,
            "CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries \
             (endpoint_id, next_attempt_at) WHERE status = 'pending'",
            "idx_webhook_deliveries_endpoint_due",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        swap(
            manager,
            "CREATE INDEX idx_webhook_deliveries_endpoint_due ON webhook_deliveries \
             (endpoint_id, status, next_attempt_at)",
            "idx_webhook_deliveries_due",
        )
        .await
    }
}

/// Builds the index `create` makes, then drops the index `old` (so a claim always has
/// one to use).
async fn swap(manager: &SchemaManager<'_>, create: &str, old: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared(create).await?;
    db.execute_unprepared(&format!("DROP INDEX {old}"))
        .await
        .map(|_| ())
}
