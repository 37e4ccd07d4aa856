//! What one key did in one minute or one hour: its answers by outcome and the leads
//! it stored. Written by `ciq-usage` in batches (counts add up on conflict, so every
//! instance flushes into the same row); minute rows are rolled up into hour rows after
//! 48 hours.

use sea_orm::entity::prelude::*;

/// A row of `key_usage`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "key_usage")]
pub struct Model {
    /// The key the counts are of.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key_id: Uuid,
    /// `minute` or `hour`: how long the bucket is.
    #[sea_orm(primary_key, auto_increment = false)]
    pub granularity: String,
    /// The bucket's first instant (UTC, on the minute or the hour).
    #[sea_orm(primary_key, auto_increment = false)]
    pub starts_at: DateTimeUtc,
    /// The key's account.
    pub user_id: Uuid,
    /// Answers 2xx.
    pub success: i64,
    /// Answers 4xx but 429.
    pub client_error: i64,
    /// Answers 429 (visitor-limited ones included).
    pub rate_limited: i64,
    /// Answers 5xx.
    pub server_error: i64,
    /// Leads stored (spam included).
    pub leads_created: i64,
    /// Leads stored as spam.
    pub spam: i64,
    /// Request-log rows not written (past the per-key rate or the pending cap).
    pub dropped: i64,
}

/// Relations of `key_usage`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
