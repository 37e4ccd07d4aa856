//! Errors of user and key management.

use sea_orm::DbErr;
use uuid::Uuid;

/// What can go wrong when managing users and keys.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No user has this email or id.
    #[error("no user with email or id {0:?}")]
    UserNotFound(String),
    /// The email is already registered.
    #[error("a user with email {0:?} already exists")]
    EmailTaken(String),
    /// The user already holds the most active keys allowed.
    #[error("a user may hold at most {0} active keys; revoke one first")]
    TooManyKeys(usize),
    /// No key has this id.
    #[error("no API key with id {0}")]
    KeyNotFound(Uuid),
    /// An input broke a rule; the message names the field and the rule.
    #[error("{field}: {rule}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// The rule it broke.
        rule: String,
    },
    /// Hashing failed (never expected with valid parameters).
    #[error("hashing failed: {0}")]
    Hashing(String),
    /// The session store (Redis) failed.
    #[error("session store: {0}")]
    SessionStore(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] DbErr),
}

/// `db.transaction(…).await?` reads plainly: a failure to begin or commit is the
/// database's, an error of the transaction's own work is what it was.
impl From<sea_orm::TransactionError<AdminError>> for AdminError {
    fn from(err: sea_orm::TransactionError<AdminError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(err) => Self::Database(err),
            sea_orm::TransactionError::Transaction(err) => err,
        }
    }
}

impl From<AdminError> for ciq_http::HttpError {
    /// The HTTP face of a management error: a code of the table; a store outage is
    /// 503, a hashing fault 500 (the cause goes to the access log only).
    fn from(err: AdminError) -> Self {
        use ciq_http::{ErrorCode, FieldError, HttpError};
        match err {
            AdminError::UserNotFound(_) => HttpError::not_found("no such user"),
            AdminError::KeyNotFound(_) => HttpError::not_found("no such API key"),
            AdminError::EmailTaken(_) => HttpError::new(ErrorCode::EmailTaken),
            err @ AdminError::TooManyKeys(_) => {
                HttpError::with_message(ErrorCode::TooManyKeys, err.to_string())
            }
            AdminError::Invalid { field, rule } => {
                HttpError::validation_failed(vec![FieldError::new(field, rule)])
            }
            err @ AdminError::Hashing(_) => HttpError::internal(err),
            err @ (AdminError::SessionStore(_) | AdminError::Database(_)) => {
                HttpError::service_unavailable(err)
            }
        }
    }
}
