//! End-to-end tests: the real gateway on port 0, real HTTP, SQLite and PostgreSQL.

mod admin;
mod auth;
mod batch;
mod browser_keys;
mod cluster;
mod docs;
mod errors;
mod faults;
mod headers;
mod idempotency;
mod imports;
mod keys;
mod leads;
mod limits;
mod manage;
mod migrations;
mod replicas;
mod retention;
mod revocation;
mod settings;
mod settings_browser;
mod settings_leads;
mod swagger;
mod topology;
mod upsert;
mod webhooks;
