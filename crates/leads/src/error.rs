//! What can go wrong with a lead once its fields passed the rules.

use sea_orm::{DbErr, TransactionError};

/// Failures of storing a lead or of its `Idempotency-Key`.
#[derive(Debug, thiserror::Error)]
pub enum LeadError {
    /// The store failed; the cause is kept for the log (never shown to a client).
    #[error("the lead store is unavailable: {0}")]
    Store(#[from] DbErr),
    /// The store is out of reach (the breaker is open), or a write could not settle
    /// (a concurrent change kept moving under it): a retry will do.
    #[error("the lead store is unavailable: {0}")]
    Unavailable(String),
    /// The `Idempotency-Key` was used with another body within the retention period.
    #[error("the Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    /// A request with the same `Idempotency-Key` is still running.
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyKeyInUse,
    /// The account already has a lead with this `external_id`.
    #[error("a lead with this external_id exists: {0}")]
    DuplicateLead(uuid::Uuid),
    /// No such lead in this account (also another account's, or an id that is not one).
    #[error("no such lead")]
    NotFound,
    /// A remembered answer holds a lead that was erased since.
    #[error("the lead of this answer was erased")]
    LeadDeleted,
    /// An upsert found its lead and carries a field only a create takes (`attribution`
    /// or `consent`, named).
    #[error("{0} is recorded when the lead is created and never changes")]
    SetOnce(&'static str),
    /// A remembered answer could not be read back (a fault of ours).
    #[error("a remembered idempotent answer is unreadable: {0}")]
    StoredAnswerUnreadable(String),
}

impl LeadError {
    /// Whether the store itself failed (as opposed to a rule of the request): what the
    /// breaker's probe should look into.
    pub fn is_store_trouble(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Unavailable(_))
    }
}

impl From<ciq_store::StoreDown> for LeadError {
    fn from(down: ciq_store::StoreDown) -> Self {
        Self::Unavailable(down.to_string())
    }
}

/// `db.transaction(…).await?` reads plainly: a failure to begin or commit is the
/// store's, an error of the transaction's own work is what it was.
impl<E: Into<LeadError>> From<TransactionError<E>> for LeadError {
    fn from(err: TransactionError<E>) -> Self {
        match err {
            TransactionError::Connection(err) => Self::Store(err),
            TransactionError::Transaction(err) => err.into(),
        }
    }
}

impl ciq_errors::Coded for LeadError {
    /// A store failure is 503 (retry), an unreadable remembered answer 500.
    fn code(&self) -> ciq_errors::ErrorCode {
        use ciq_errors::ErrorCode;
        match self {
            Self::Store(_) | Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Self::IdempotencyKeyInUse => ErrorCode::IdempotencyKeyInUse,
            Self::DuplicateLead(_) => ErrorCode::DuplicateLead,
            Self::NotFound => ErrorCode::LeadNotFound,
            Self::LeadDeleted => ErrorCode::LeadDeleted,
            Self::SetOnce(_) => ErrorCode::ValidationFailed,
            Self::StoredAnswerUnreadable(_) => ErrorCode::InternalError,
        }
    }

    fn lead_id(&self) -> Option<uuid::Uuid> {
        match self {
            Self::DuplicateLead(id) => Some(*id),
            _ => None,
        }
    }

    fn field(&self) -> Option<(&'static str, String)> {
        match self {
            Self::SetOnce(field) => {
                let violation = crate::attribution::set_once(field);
                let path = match *field {
                    crate::attribution::ATTRIBUTION => "lead.attribution",
                    _ => "lead.consent",
                };
                Some((path, violation.message))
            }
            _ => None,
        }
    }
}
