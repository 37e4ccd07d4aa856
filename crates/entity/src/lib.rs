//! sea-orm entities of the ConvertIQ gateway.
//!
//! One module per table. The schema itself is owned by `ciq-migrations`; these
//! types mirror it column for column, with enums where a column holds one of a few
//! names. [`email`] holds the address rule of the two tables that store emails;
//! [`account`] scopes every query of a table whose rows belong to one account.

pub mod account;
pub mod api_key;
pub mod email;
pub mod idempotency_key;
pub mod idempotency_lead;
pub mod key_event;
pub mod key_usage;
pub mod lead;
pub mod lead_import;
pub mod lead_import_failure;
pub mod password_reset;
pub mod request_log;
pub mod session;
pub mod spam_block;
pub mod spool_applied;
pub mod user;
pub mod webhook_delivery;
pub mod webhook_endpoint;

pub use account::AccountScoped;
pub use api_key::Entity as ApiKey;
pub use idempotency_key::Entity as IdempotencyKey;
pub use idempotency_lead::Entity as IdempotencyLead;
pub use key_event::Entity as KeyEvent;
pub use key_usage::Entity as KeyUsage;
pub use lead::Entity as Lead;
pub use lead_import::Entity as LeadImport;
pub use lead_import_failure::Entity as LeadImportFailure;
pub use password_reset::Entity as PasswordReset;
pub use request_log::Entity as RequestLog;
pub use session::Entity as Session;
pub use spool_applied::Entity as SpoolApplied;
pub use user::Entity as User;
pub use webhook_delivery::Entity as WebhookDelivery;
pub use webhook_endpoint::Entity as WebhookEndpoint;

use sea_orm::prelude::DateTimeUtc;

/// The current time at the precision every timestamp is stored with (milliseconds),
/// so what a response says is exactly what a later read returns, on every backend.
pub fn now() -> DateTimeUtc {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(3)
}
