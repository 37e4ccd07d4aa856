//! Sliding-window rate limiting.
//!
//! The window is a true sliding log: a request is admitted when fewer than `limit`
//! requests were admitted in the trailing `window`, so no trailing window ever holds
//! more than `limit` admissions. Refused requests do not count.
//!
//! [`InProcessLimiter`] serves a single instance (the embedded default);
//! [`RedisLimiter`] keeps the same semantics across any number of instances, and
//! [`FailoverLimiter`] serves from Redis while it answers and in-process while it
//! does not.

mod failover;
mod in_process;
mod redis_backend;

use std::time::Duration;

pub use failover::FailoverLimiter;
pub use in_process::InProcessLimiter;
pub use redis_backend::RedisLimiter;

/// The outcome of one limiter decision, with what the rate-limit headers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request was admitted (and counted).
    pub allowed: bool,
    /// The limit applied.
    pub limit: u32,
    /// Admissions left in the current trailing window after this decision.
    pub remaining: u32,
    /// Time until the oldest admission in the window ages out and frees a slot.
    /// For a refused request this is exactly how long to wait to be admitted.
    pub reset_after: Duration,
}

impl Decision {
    /// Whole seconds until a slot frees, rounded up, as `Retry-After` and the
    /// `RateLimit` header's `t=` want them: waiting this long is always enough.
    pub fn reset_after_secs(&self) -> u64 {
        let d = self.reset_after;
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    }
}

/// A rate limiter: one decision per request, per bucket (an API key or a client
/// address).
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Admits (and counts) the request if fewer than `limit` were admitted for
    /// `bucket` in the trailing `window`.
    async fn acquire(&self, bucket: &str, limit: u32, window: Duration) -> Decision;

    /// What [`RateLimiter::acquire`] would decide now, without counting anything:
    /// for allowances that only failures use up.
    async fn peek(&self, bucket: &str, limit: u32, window: Duration) -> Decision;

    /// The backend deciding right now, for readiness and metrics (`in_process`, `redis`).
    fn backend(&self) -> &'static str;

    /// Whether a shared backend is configured but unreachable, so decisions are
    /// in-process for now.
    fn degraded(&self) -> bool {
        false
    }
}
