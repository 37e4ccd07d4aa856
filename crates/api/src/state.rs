//! What the integrators' handlers share.

use std::sync::Arc;

use ciq_admin::KeyVerifier;
use ciq_limiter::{LimitSettings, RateLimiter};
use ciq_store::Db;

/// Default request body limit (64 KiB: a lead is well under 10 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared state of the public API of one instance.
pub struct ApiState {
    /// The store of keys and leads (the primary).
    pub db: Db,
    /// Where lists and single-lead reads go (a read replica while it is fit).
    pub reads: ciq_store::Reads,
    /// Verifies presented keys (cached).
    pub verifier: Arc<KeyVerifier>,
    /// Decides admissions.
    pub limiter: Arc<dyn RateLimiter>,
    /// Limits applied.
    pub limits: LimitSettings,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a
    /// proxy that sets it).
    pub trust_forwarded_for: bool,
    /// The gateway's own origin (`CIQ_PUBLIC_URL`, serialized like an `Origin` header):
    /// pages there (Swagger UI) may use any key.
    pub public_origin: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// The lead store (its writes, reads and the store breaker in front of them).
    pub leads: ciq_leads::Leads,
    /// How long an `Idempotency-Key` and its answer are remembered.
    pub idempotency_retention: std::time::Duration,
    /// The gateway's secret key, which opens keys' sealed challenge secrets (`None`: a
    /// key with a challenge cannot be checked, and its submissions are stored as spam).
    pub secrets: Option<ciq_store::secret::SecretBox>,
    /// Asks challenge providers about browser submissions' tokens.
    pub challenges: crate::challenge::ChallengeVerifier,
    /// Webhook URLs on private networks are allowed (`CIQ_WEBHOOK_ALLOW_PRIVATE_NETWORKS`,
    /// for tests and closed networks), as in Settings.
    pub webhook_allow_private: bool,
    /// Accounts' block lists, read for browser submissions and kept for
    /// [`BLOCK_LIST_TTL`] (an owner's change applies within that time on every instance).
    pub block_lists: moka::future::Cache<uuid::Uuid, std::sync::Arc<ciq_leads::spam::BlockList>>,
    /// Counts each key's answers and leads, and keeps its request log, until the
    /// gateway's flusher writes them.
    pub usage: Arc<ciq_usage::Recorder>,
    /// The outage spool (with Redis): creates of clients that take a queued answer
    /// wait there while the store is down. `None` without Redis.
    pub spool: Option<Arc<ciq_spool::Spool>>,
}

/// How long an instance keeps an account's block list before reading it again.
pub const BLOCK_LIST_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// An empty cache of block lists, each kept for [`BLOCK_LIST_TTL`].
pub fn block_list_cache()
-> moka::future::Cache<uuid::Uuid, std::sync::Arc<ciq_leads::spam::BlockList>> {
    moka::future::Cache::builder()
        .time_to_live(BLOCK_LIST_TTL)
        .max_capacity(10_000)
        .build()
}
