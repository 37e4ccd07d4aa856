//! A row of a CSV import that could not become a lead.

use sea_orm::entity::prelude::*;

/// A row of `lead_import_failures`: which line of the file, why, and the row itself (as
/// one CSV record, so the owner can download, fix and import the failed rows again).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_import_failures")]
pub struct Model {
    /// The import.
    #[sea_orm(primary_key, auto_increment = false)]
    pub import_id: Uuid,
    /// The line of the file the row starts on (the header is line 1).
    #[sea_orm(primary_key, auto_increment = false)]
    pub line: i32,
    /// Every rule the row broke, in words, naming the columns.
    pub reason: String,
    /// The row as it was in the file, one CSV record.
    pub record: String,
}

/// Relations of `lead_import_failures`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The import.
    #[sea_orm(
        belongs_to = "super::lead_import::Entity",
        from = "Column::ImportId",
        to = "super::lead_import::Column::Id"
    )]
    Import,
}

impl Related<super::lead_import::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Import.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
