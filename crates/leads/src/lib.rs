//! The lead domain, with no HTTP in it: what a valid lead is, how it is stored, and
//! what a retried request with an `Idempotency-Key` gets. The HTTP surfaces map
//! these types to their own objects and [`LeadError`] to their error codes.
//!
//! - [`rules`]: the Field Reference, enforced; every broken rule reported at once.
//! - [`money`]: exact two-decimal amounts carried as cents.
//! - [`store`]: writing a lead under the key owner's account.
//! - [`group_commit`]: concurrent creates share one INSERT and one commit.
//! - [`idempotency`]: Stripe's `Idempotency-Key` semantics, per account.
//! - [`import`]: owners' CSV imports, run in the background, resumable.
//! - [`webhooks`]: lead events to the owners' endpoints: outbox, signatures, delivery.

pub mod error;
pub mod group_commit;
pub mod idempotency;
pub mod import;
pub mod money;
pub mod rules;
pub mod store;
pub mod webhooks;

pub use ciq_entity::lead::LeadStatus;
pub use error::LeadError;
pub use group_commit::{Announcement, LeadWriter};
pub use money::Money;
pub use rules::{NewLead, Violation};
pub use store::{Lead, LeadOwner};
