//! Operation groups of the public document.

use poem_openapi::Tags;

/// Groups of the public document.
#[derive(Tags)]
pub enum ApiTags {
    /// Create leads in your ConvertIQ account.
    Leads,
    /// Your key and its account: test a key before you use it.
    Account,
    /// Webhook endpoints your integration subscribes, with filters.
    Webhooks,
}
