//! Schema migrations of the ConvertIQ gateway.
//!
//! One migration per file, named `mYYYYMMDD_NNNNNN_what.rs`; a released migration
//! is never edited, a change is a new file.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_users;
mod m20261126_000002_create_api_keys;
mod m20261126_000003_create_leads;
mod m20261126_000004_create_key_events;
mod m20261126_000005_create_sessions;
mod m20261126_000006_create_idempotency_keys;
mod m20261201_000007_add_users_sessions_valid_after;
mod m20261201_000008_add_api_keys_version;
mod m20261201_000009_manage_leads;
mod m20261201_000010_add_api_keys_allowed_origins;
mod m20261201_000011_add_leads_email_index;
mod m20261201_000012_create_idempotency_leads;
mod m20261201_000013_partial_external_id_index;
mod m20261201_000014_create_lead_imports;
mod m20261201_000015_create_webhooks;
mod m20261204_000016_add_webhook_outbox_codec;
mod m20261204_000017_browser_submissions;
mod m20261204_000018_attribution_consent;
mod m20261205_000019_webhook_subscriptions;
mod m20261205_000020_usage;
mod m20261205_000021_lead_search;
mod m20261205_000022_password_resets;
mod m20261205_000023_spool_applied;
mod m20261205_000024_import_resume;
mod m20261206_000025_outbox_order;
mod m20261207_000026_delivery_claim_index;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_users::Migration),
            Box::new(m20261126_000002_create_api_keys::Migration),
            Box::new(m20261126_000003_create_leads::Migration),
            Box::new(m20261126_000004_create_key_events::Migration),
            Box::new(m20261126_000005_create_sessions::Migration),
            Box::new(m20261126_000006_create_idempotency_keys::Migration),
            Box::new(m20261201_000007_add_users_sessions_valid_after::Migration),
            Box::new(m20261201_000008_add_api_keys_version::Migration),
            Box::new(m20261201_000009_manage_leads::Migration),
            Box::new(m20261201_000010_add_api_keys_allowed_origins::Migration),
            Box::new(m20261201_000011_add_leads_email_index::Migration),
            Box::new(m20261201_000012_create_idempotency_leads::Migration),
            Box::new(m20261201_000013_partial_external_id_index::Migration),
            Box::new(m20261201_000014_create_lead_imports::Migration),
            Box::new(m20261201_000015_create_webhooks::Migration),
            Box::new(m20261204_000016_add_webhook_outbox_codec::Migration),
            Box::new(m20261204_000017_browser_submissions::Migration),
            Box::new(m20261204_000018_attribution_consent::Migration),
            Box::new(m20261205_000019_webhook_subscriptions::Migration),
            Box::new(m20261205_000020_usage::Migration),
            Box::new(m20261205_000021_lead_search::Migration),
            Box::new(m20261205_000022_password_resets::Migration),
            Box::new(m20261205_000023_spool_applied::Migration),
            Box::new(m20261205_000024_import_resume::Migration),
            Box::new(m20261206_000025_outbox_order::Migration),
            Box::new(m20261207_000026_delivery_claim_index::Migration),
        ]
    }
}
