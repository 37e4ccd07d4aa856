//! What the Settings pages read.

use std::sync::Arc;
use std::time::Duration;

use ciq_admin::sessions::SessionStore;
use ciq_limiter::RateLimiter;
use ciq_store::Db;

/// Default length of a Settings session.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// Shared state of the account owners' surface of one instance.
pub struct ConsoleState {
    /// The store of users and keys (the primary).
    pub db: Db,
    /// Where the Settings lists go (a read replica while it is fit, unless the browser
    /// just wrote something: see `ciq_console::fresh`).
    pub reads: ciq_store::Reads,
    /// Sign-in throttling.
    pub limiter: Arc<dyn RateLimiter>,
    /// The window sign-in failures are counted over.
    pub window: Duration,
    /// The per-key limit keys get unless they override it (shown on the page).
    pub default_limit_per_window: u32,
    /// The visitor limit browser keys get unless they override it (shown on the page).
    pub default_visitor_limit_per_window: u32,
    /// Take the client address (and the scheme) from the trusted proxy's headers.
    pub trust_forwarded_for: bool,
    /// Where sessions live.
    pub sessions: SessionStore,
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Password checks that may run at once ([`MAX_SIGN_INS_IN_FLIGHT`]); a sign-in
    /// that finds none free is answered 503 at once instead of queueing.
    pub sign_in_slots: Arc<tokio::sync::Semaphore>,
    /// The instance's breaker on the store: while open, the pages answer 503 at once.
    pub breaker: Arc<ciq_store::Breaker>,
    /// This instance's import worker, woken when an owner starts an import here.
    pub import_worker: Arc<ciq_imports::worker::ImportWorker>,
    /// This instance's webhook delivery worker, woken when an owner sends a test or a
    /// replay.
    pub delivery_worker: Arc<ciq_webhooks::delivery::DeliveryWorker>,
    /// The key sealing webhook secrets (`None`: webhooks are off on this server).
    pub webhook_key: Option<ciq_store::secret::SecretBox>,
    /// Whether endpoints may point at private networks (development, tests).
    pub webhook_allow_private: bool,
}

/// Default number of password checks in flight at once per instance.
pub const MAX_SIGN_INS_IN_FLIGHT: usize = 8;
