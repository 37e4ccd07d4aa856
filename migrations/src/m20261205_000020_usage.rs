use sea_orm_migration::{prelude::*, schema::*};

/// Usage and the request log. `key_usage` holds each key's answers by outcome and the
/// leads it stored, per minute (kept 48 h, then rolled up) and per hour (kept 90 days);
/// its primary key is the row instances add their counts to. `request_log` holds a
/// key's answers that were not 2xx, newest first by a time-ordered id. Both are read by
/// key (the key page, the API) and by account (the dashboard).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(KeyUsage::Table)
                    .col(uuid(KeyUsage::KeyId))
                    .col(string_len(KeyUsage::Granularity, 6))
                    .col(timestamp_with_time_zone(KeyUsage::StartsAt))
                    .col(uuid(KeyUsage::UserId))
                    .col(big_integer(KeyUsage::Success).default(0))
                    .col(big_integer(KeyUsage::ClientError).default(0))
                    .col(big_integer(KeyUsage::RateLimited).default(0))
                    .col(big_integer(KeyUsage::ServerError).default(0))
                    .col(big_integer(KeyUsage::LeadsCreated).default(0))
                    .col(big_integer(KeyUsage::Spam).default(0))
                    .col(big_integer(KeyUsage::Dropped).default(0))
                    .primary_key(
                        Index::create()
                            .col(KeyUsage::KeyId)
                            .col(KeyUsage::Granularity)
                            .col(KeyUsage::StartsAt),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_key_usage_account")
                    .table(KeyUsage::Table)
                    .col(KeyUsage::UserId)
                    .col(KeyUsage::StartsAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RequestLog::Table)
                    .col(uuid(RequestLog::Id).primary_key())
                    .col(uuid(RequestLog::KeyId))
                    .col(uuid(RequestLog::UserId))
                    .col(timestamp_with_time_zone(RequestLog::At))
                    .col(string_len(RequestLog::Method, 16))
                    .col(string_len(RequestLog::Path, 255))
                    .col(integer(RequestLog::Status))
                    .col(string_len_null(RequestLog::Code, 64))
                    .col(string_len_null(RequestLog::Field, 255))
                    .col(string_len_null(RequestLog::Message, 500))
                    .col(string_len_null(RequestLog::RequestId, 128))
                    .col(string_len_null(RequestLog::Client, 64))
                    .col(string_len_null(RequestLog::Origin, 255))
                    .col(string_len_null(RequestLog::UserAgent, 200))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_request_log_key")
                    .table(RequestLog::Table)
                    .col(RequestLog::KeyId)
                    .col(RequestLog::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_request_log_at")
                    .table(RequestLog::Table)
                    .col(RequestLog::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RequestLog::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(KeyUsage::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum KeyUsage {
    Table,
    KeyId,
    Granularity,
    StartsAt,
    UserId,
    Success,
    ClientError,
    RateLimited,
    ServerError,
    LeadsCreated,
    Spam,
    Dropped,
}

#[derive(DeriveIden)]
enum RequestLog {
    Table,
    Id,
    KeyId,
    UserId,
    At,
    Method,
    Path,
    Status,
    Code,
    Field,
    Message,
    RequestId,
    Client,
    Origin,
    UserAgent,
}
