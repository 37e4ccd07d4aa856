//! One answer of a key that was not 2xx, as its owner reads it in the request log:
//! what was asked and what was answered, never a body or a key. The client address is
//! stored truncated (IPv4 /24, IPv6 /48).

use sea_orm::entity::prelude::*;

/// A row of `request_log`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "request_log")]
pub struct Model {
    /// Time-ordered id (UUIDv7): the log's order and its paging cursor.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The key that made the request.
    pub key_id: Uuid,
    /// The key's account.
    pub user_id: Uuid,
    /// When the answer was given.
    pub at: DateTimeUtc,
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// HTTP status answered.
    pub status: i32,
    /// The error's `code`, when the body was one of ours.
    pub code: Option<String>,
    /// The first detail's field.
    pub field: Option<String>,
    /// The first detail's message, or the error's message when it has no details.
    pub message: Option<String>,
    /// The request's `X-Request-Id`.
    pub request_id: Option<String>,
    /// The client address, truncated (`203.0.113.0/24`, `2001:db8:1::/48`).
    pub client: Option<String>,
    /// The request's `Origin` header.
    pub origin: Option<String>,
    /// The request's `User-Agent`, at most 200 characters.
    pub user_agent: Option<String>,
}

/// Relations of `request_log`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
