//! What every request handler shares.

use std::sync::Arc;
use std::time::Duration;

use ciq_admin::KeyVerifier;
use ciq_limiter::RateLimiter;
use sea_orm::DatabaseConnection;

/// Default requests per key per window.
pub const DEFAULT_LIMIT_PER_MINUTE: u32 = 100;
/// Default request body limit (64 KiB: a lead is well under 10 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Default requests per client address per window that carry no valid key (missing,
/// malformed, unknown, revoked) or whose key is not cached yet.
pub const DEFAULT_UNAUTHENTICATED_LIMIT_PER_MINUTE: u32 = 60;

/// Rate-limit settings.
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    /// Requests admitted per key per window unless the key overrides it.
    pub per_window: u32,
    /// Requests per client address per window that need key work (see
    /// [`DEFAULT_UNAUTHENTICATED_LIMIT_PER_MINUTE`]); bounds the argon2 and database
    /// work bad keys can buy.
    pub unauthenticated_per_window: u32,
    /// The sliding window (60 s; shorter only in tests).
    pub window: Duration,
    /// Take the client address from the last `X-Forwarded-For` entry (only behind a
    /// proxy that sets it).
    pub trust_forwarded_for: bool,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            per_window: DEFAULT_LIMIT_PER_MINUTE,
            unauthenticated_per_window: DEFAULT_UNAUTHENTICATED_LIMIT_PER_MINUTE,
            window: Duration::from_secs(60),
            trust_forwarded_for: false,
        }
    }
}

/// Shared state of one gateway instance.
pub struct AppState {
    /// The store of users, keys and leads.
    pub db: DatabaseConnection,
    /// Verifies presented keys (cached).
    pub verifier: Arc<KeyVerifier>,
    /// Decides admissions.
    pub limiter: Arc<dyn RateLimiter>,
    /// Limits applied.
    pub limits: LimitSettings,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Operator token of `/admin/v1`; `None` turns the operator API off.
    pub admin_token: Option<String>,
    /// How long a Settings sign-in lasts.
    pub session_ttl: Duration,
    /// Where Settings sessions live.
    pub sessions: ciq_admin::sessions::SessionStore,
    /// Group-commit writer of leads.
    pub lead_writer: crate::leads::group_commit::LeadWriter,
}

/// Default length of a Settings session.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
