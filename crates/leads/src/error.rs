//! What can go wrong with a lead once its fields passed the rules.

/// Failures of storing a lead or of its `Idempotency-Key`.
#[derive(Debug, thiserror::Error)]
pub enum LeadError {
    /// The store could not be reached or did not answer in time.
    #[error("the lead store is unavailable: {0}")]
    Unavailable(String),
    /// The `Idempotency-Key` was used with another body within the retention period.
    #[error("the Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    /// A request with the same `Idempotency-Key` is still running.
    #[error("a request with this Idempotency-Key is still being processed")]
    IdempotencyKeyInUse,
    /// A remembered answer could not be read back (a fault of ours).
    #[error("a remembered idempotent answer is unreadable: {0}")]
    StoredAnswerUnreadable(String),
}

impl From<sea_orm::DbErr> for LeadError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Unavailable(err.to_string())
    }
}
