//! A CSV import of leads by their account's owner.

use sea_orm::entity::prelude::*;

/// A row of `lead_imports`: the uploaded file (until the import is done), how its
/// columns map to lead fields, and how far the import got — `position` data rows are
/// done, committed in the same transaction as the leads they made.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_imports")]
pub struct Model {
    /// Import id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The account the leads go to.
    pub user_id: Uuid,
    /// The uploaded file's name, as the browser gave it.
    pub file_name: String,
    /// Where the import is.
    pub status: ImportStatus,
    /// The header row: a JSON array of the column names.
    pub columns: String,
    /// Per column, the lead field it fills or `null` (ignored): a JSON array.
    pub mapping: String,
    /// The file (UTF-8 CSV); emptied once the import is done.
    pub content: Option<Vec<u8>>,
    /// Data rows in the file (the header not counted).
    pub total_rows: i32,
    /// Data rows done (created, updated or failed).
    pub position: i32,
    /// Byte offset in `content` where reading goes on after the `position` rows done
    /// (the end of the last; `None`: not known yet — read from the top and skip them).
    pub resume_byte: Option<i64>,
    /// The line that byte is on.
    pub resume_line: Option<i64>,
    /// The file's cell separator (a byte), stored with the first resume point.
    pub delimiter: Option<i16>,
    /// Leads created.
    pub created_count: i32,
    /// Leads updated (a row whose `external_id` the account held).
    pub updated_count: i32,
    /// Rows refused (listed in `lead_import_failures`).
    pub failed_count: i32,
    /// Why the import stopped as a whole (status `failed`).
    pub error: Option<String>,
    /// The instance working on it.
    pub lease_owner: Option<Uuid>,
    /// Until when that instance holds it; afterwards any instance may take it over.
    pub lease_until: Option<DateTimeUtc>,
    /// When it was uploaded.
    pub created_at: DateTimeUtc,
    /// When it last changed.
    pub updated_at: DateTimeUtc,
    /// When it was done.
    pub finished_at: Option<DateTimeUtc>,
}

/// Where an import is, stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ImportStatus {
    /// Uploaded; the owner is choosing the mapping.
    #[sea_orm(string_value = "draft")]
    Draft,
    /// Started; waiting for a worker (also after its worker stopped mid-way).
    #[sea_orm(string_value = "queued")]
    Queued,
    /// A worker is creating its leads.
    #[sea_orm(string_value = "running")]
    Running,
    /// Every row is done.
    #[sea_orm(string_value = "done")]
    Done,
    /// Stopped for good (the reason is in `error`); the rows before `position` stay.
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl ImportStatus {
    /// The name shown to owners.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Whether a worker still has rows to do.
    pub const fn is_pending(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// Relations of `lead_imports`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The rows that failed.
    #[sea_orm(has_many = "super::lead_import_failure::Entity")]
    Failures,
}

impl Related<super::lead_import_failure::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Failures.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
