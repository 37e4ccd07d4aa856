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

impl ciq_http::Coded for AdminError {
    /// A store outage is 503, a hashing fault 500 (the cause goes to the access log
    /// only).
    fn code(&self) -> ciq_http::ErrorCode {
        use ciq_http::ErrorCode;
        match self {
            Self::UserNotFound(_) | Self::KeyNotFound(_) => ErrorCode::NotFound,
            Self::EmailTaken(_) => ErrorCode::EmailTaken,
            Self::TooManyKeys(_) => ErrorCode::TooManyKeys,
            Self::Invalid { .. } => ErrorCode::ValidationFailed,
            Self::Hashing(_) => ErrorCode::InternalError,
            Self::SessionStore(_) | Self::Database(_) => ErrorCode::ServiceUnavailable,
        }
    }

    fn message(&self) -> Option<String> {
        match self {
            Self::UserNotFound(_) => Some("no such user".into()),
            Self::KeyNotFound(_) => Some("no such API key".into()),
            Self::TooManyKeys(_) => Some(self.to_string()),
            _ => None,
        }
    }

    fn field(&self) -> Option<(&'static str, String)> {
        match self {
            Self::Invalid { field, rule } => Some((field, rule.clone())),
            _ => None,
        }
    }
}
