//! An outage-spool entry a drain applied (see the spool crate).

use sea_orm::entity::prelude::*;

/// A row of `spool_applied`: written in the transaction that stored the entry's leads.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "spool_applied")]
pub struct Model {
    /// `<stream group>-<stream entry id>`, e.g. `3-1764547200123-0`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub entry: String,
    /// The account the entry's leads went to.
    pub user_id: Uuid,
    /// When the drain committed it.
    pub applied_at: DateTimeUtc,
}

/// Relations of `spool_applied`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
