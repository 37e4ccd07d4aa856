//! The lead domain, with no HTTP in it: what a valid lead is, how it is stored, and
//! what a retried request with an `Idempotency-Key` gets. The HTTP surfaces map
//! these types to their own objects and [`LeadError`] to their error codes.
//!
//! - [`rules`]: the Field Reference, enforced; every broken rule reported at once.
//! - [`lead`]: the lead as the domain hands it out, and its JSON object.
//! - [`money`]: exact two-decimal amounts carried as cents.
//! - [`store`]: writing a lead under the key owner's account.
//! - [`service`]: [`Leads`], the handle the surfaces use, and the one layer that
//!   consults the store breaker.
//! - [`group_commit`]: concurrent creates share one INSERT and one commit.
//! - [`idempotency`]: Stripe's `Idempotency-Key` semantics, per account.
//! - [`events`]: lead events for ciq-webhooks' outbox: types, payload, attributes.
//! - [`stats`]: leads per day and top sources, for the owner's dashboard.
//! - [`spam`]: the quarantine: spam reasons, the rules browser submissions pass through.
//! - [`attribution`]: where a lead came from and what it agreed to (set once).
//! - [`violation`], [`time`]: a broken rule, and times as answers write them.

mod arrays;
pub mod attribution;
pub mod bulk;
pub mod error;
pub mod events;
pub mod group_commit;
pub mod idempotency;
pub mod lead;
pub mod money;
mod rows;
pub mod rules;
pub mod service;
pub mod spam;
pub mod spooled;
pub mod stats;
pub mod store;
pub mod time;
pub mod violation;

pub use attribution::{Attribution, Consent, ConsentGiven};
pub use ciq_entity::lead::LeadStatus;
pub use error::LeadError;
pub use group_commit::{Announcement, LeadWriter};
pub use lead::Lead;
pub use money::Money;
pub use rules::{NewLead, Violation};
pub use service::Leads;
pub use spam::{Spam, SpamReason};
pub use store::LeadOwner;
