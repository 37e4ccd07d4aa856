use sea_orm_migration::{prelude::*, schema::*};

/// Web forms that survive bots. A key may carry its own visitor limit (browser
/// submissions per client address per minute; `NULL`: the gateway's default) and a
/// challenge: its provider (`turnstile`, `hcaptcha`, `recaptcha`) and the provider's
/// secret, sealed under the gateway's secret key and bound to the key's id. A lead
/// may be spam: `spam_reason` (`honeypot`, `link_in_name`, …) and when it was judged so;
/// an account's block list holds the email addresses and domains whose browser
/// submissions are spam;
/// both `NULL` for a normal lead, so every existing lead stays normal. Spam is found by
/// a partial index that normal leads pay nothing for (the purge and the Spam tab read it).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            integer_null(ApiKeys::VisitorRateLimitPerMinute),
            string_len_null(ApiKeys::ChallengeProvider, 16),
            blob_null(ApiKeys::ChallengeSecret),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // SQLite adds one column per ALTER TABLE.
        for column in [
            ColumnDef::new(Leads::SpamReason)
                .string_len(32)
                .null()
                .to_owned(),
            ColumnDef::new(Leads::SpamAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Leads::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(SpamBlocks::Table)
                    .col(uuid(SpamBlocks::UserId))
                    .col(string_len(SpamBlocks::Entry, 255))
                    .col(timestamp_with_time_zone(SpamBlocks::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(SpamBlocks::UserId)
                            .col(SpamBlocks::Entry),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_leads_user_spam ON leads (user_id, spam_at) \
                 WHERE spam_at IS NOT NULL",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX idx_leads_user_spam")
            .await?;
        manager
            .drop_table(Table::drop().table(SpamBlocks::Table).to_owned())
            .await?;
        for column in [Leads::SpamAt, Leads::SpamReason] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Leads::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            ApiKeys::ChallengeSecret,
            ApiKeys::ChallengeProvider,
            ApiKeys::VisitorRateLimitPerMinute,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ApiKeys::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    VisitorRateLimitPerMinute,
    ChallengeProvider,
    ChallengeSecret,
}

#[derive(DeriveIden)]
enum Leads {
    Table,
    SpamReason,
    SpamAt,
}

#[derive(DeriveIden)]
enum SpamBlocks {
    Table,
    UserId,
    Entry,
    CreatedAt,
}
