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
    /// The account already has a lead with this `external_id`.
    #[error("a lead with this external_id exists: {0}")]
    DuplicateLead(uuid::Uuid),
    /// No such lead in this account (also another account's, or an id that is not one).
    #[error("no such lead")]
    NotFound,
    /// A remembered answer holds a lead that was erased since.
    #[error("the lead of this answer was erased")]
    LeadDeleted,
    /// A remembered answer could not be read back (a fault of ours).
    #[error("a remembered idempotent answer is unreadable: {0}")]
    StoredAnswerUnreadable(String),
}

impl From<sea_orm::DbErr> for LeadError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Unavailable(err.to_string())
    }
}
