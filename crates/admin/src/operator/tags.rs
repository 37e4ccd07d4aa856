//! Operation groups of the operator document.

use poem_openapi::Tags;

/// Groups of the operator document.
#[derive(Tags)]
pub enum OperatorTags {
    /// Users and keys (`Authorization: Bearer $CIQ_ADMIN_TOKEN`).
    Admin,
    /// Liveness, readiness and metrics: served on every instance, without a token.
    Health,
}
