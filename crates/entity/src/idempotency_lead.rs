//! A lead held by a remembered batch answer, and its item's place in that answer.

use sea_orm::entity::prelude::*;

/// A row of `idempotency_leads`: erasing `lead_id` empties item `item` of the answer
/// remembered under (`user_id`, `key`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_leads")]
pub struct Model {
    /// The tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The lead the answer holds.
    #[sea_orm(primary_key, auto_increment = false)]
    pub lead_id: Uuid,
    /// The `Idempotency-Key` the answer is remembered under.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The lead's item (0-based) in the batch.
    pub item: i32,
    /// The key's first use: purged with it.
    pub created_at: DateTimeUtc,
}

/// Relations of `idempotency_leads`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
