//! What the operator API and the probes read.

use std::sync::Arc;

use ciq_limiter::RateLimiter;
use ciq_store::Db;
use secrecy::SecretString;

use crate::KeyVerifier;

/// Shared state of the operator surface of one instance.
pub struct OperatorState {
    /// The store of users and keys.
    pub db: Db,
    /// The read replica's state, for readiness and metrics.
    pub reads: ciq_store::Reads,
    /// The key verifier, for its counters in `/metrics`.
    pub verifier: Arc<KeyVerifier>,
    /// The limiter, for readiness and the degraded gauge.
    pub limiter: Arc<dyn RateLimiter>,
    /// `Authorization: Bearer` token of `/admin/v1`; `None` turns the API off.
    pub admin_token: Option<SecretString>,
    /// Take the client address from the last `X-Forwarded-For` entry (for the key
    /// history of changes made here).
    pub trust_forwarded_for: bool,
    /// The instance's breaker on the store: while open, the operator API answers 503
    /// at once and readiness says the database is unreachable without asking it.
    pub breaker: Arc<ciq_store::Breaker>,
    /// The gateway's secret key, which seals challenge secrets of the keys made here
    /// (`None`: keys with a challenge are refused).
    pub secrets: Option<ciq_store::secret::SecretBox>,
    /// The outage spool (with Redis), for readiness and its gauges.
    pub spool: Option<Arc<dyn ciq_store::Spooling>>,
}
