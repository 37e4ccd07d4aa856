//! A remembered `Idempotency-Key`: the request it stood for and the answer given.

use sea_orm::entity::prelude::*;

/// A row of `idempotency_keys`, unique per (user, key).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// The tenant: keys are scoped per user.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The client's `Idempotency-Key`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// BLAKE2s (hex) of the canonical request body.
    pub request_hash: String,
    /// Status of the stored answer; null while the first request is still running.
    pub response_status: Option<i32>,
    /// Body of the stored answer.
    pub response_body: Option<String>,
    /// When the key was first used; it is forgotten 24 hours later.
    pub created_at: DateTimeUtc,
    /// The lead the stored answer holds (erasing the lead empties the answer).
    pub lead_id: Option<Uuid>,
}

/// Relations of `idempotency_keys`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
