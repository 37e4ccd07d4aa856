//! An entry of an account's block list: browser submissions from this email address,
//! or from this domain and its subdomains, are stored as spam.

use sea_orm::entity::prelude::*;

/// A row of `spam_blocks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "spam_blocks")]
pub struct Model {
    /// The tenant.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// An email address (`spammer@example.com`) or a domain (`example.com`), lower case.
    #[sea_orm(primary_key, auto_increment = false)]
    pub entry: String,
    /// When the owner added it.
    pub created_at: DateTimeUtc,
}

/// Relations of `spam_blocks`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
