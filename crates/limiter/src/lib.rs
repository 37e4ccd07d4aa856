//! Sliding-window rate limiting.
//!
//! The window is a true sliding log: a request is admitted when fewer than `limit`
//! requests were admitted in the trailing `window`, so no trailing window ever holds
//! more than `limit` admissions. Refused requests do not count.
//!
//! [`InProcessLimiter`] serves a single instance (the embedded default);
//! [`RedisLimiter`] keeps the same semantics across any number of instances, and
//! [`FailoverLimiter`] serves from Redis while it answers and in-process while it
//! does not, both over [`ciq_redis::RedisLink`], the connection to Redis (one node or a
//! Redis Cluster) that every user of Redis in the gateway shares.

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

/// What a limit is counted against. Each bucket has its own sliding window; its
/// name (the Redis key's hash tag) is fixed by the variant, so two kinds can never
/// share a window by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket<'a> {
    /// One API key's requests.
    Key(uuid::Uuid),
    /// Requests from one client address that carried no usable key.
    Address(&'a str),
    /// Sign-in attempts for one email address (the slow ceiling).
    LoginEmail(&'a str),
    /// Sign-in attempts from one client address (an IPv6 one grouped by /64).
    LoginAddress(&'a str),
    /// Sign-in attempts for one email from one client address.
    LoginPair(&'a str, &'a str),
    /// Test events and replays an owner sends to one webhook endpoint.
    EndpointSends(uuid::Uuid),
    /// Failed verifications (argon2 runs that did not match) of one key's lookup id.
    LookupFailures(&'a str),
    /// Browser submissions with one key from one client address (an IPv6 one grouped
    /// by /64): the visitor limit.
    Visitor(uuid::Uuid, &'a str),
    /// Calls of `GET /api/external/me` with one key: an allowance of their own, so
    /// testing credentials never spends the key's budget.
    KeyInfo(uuid::Uuid),
}

impl Bucket<'_> {
    /// The bucket's name in a backend: `key:<uuid>`, `addr:<address>`,
    /// `login:email:<email>`, `login:addr:<address>`, `login:pair:<address>:<email>`,
    /// `webhook:sends:<uuid>`, `badkey:<lookup id>`, `visitor:<uuid>:<address>`,
    /// `me:<uuid>`.
    pub fn name(&self) -> String {
        // Joined with one allocation of the exact size (every request names its bucket).
        let mut buffer = uuid::Uuid::encode_buffer();
        match self {
            Bucket::Key(key) => ["key:", key.hyphenated().encode_lower(&mut buffer)].concat(),
            Bucket::Address(addr) => ["addr:", addr].concat(),
            Bucket::LoginEmail(email) => ["login:email:", email].concat(),
            Bucket::LoginAddress(addr) => ["login:addr:", addr].concat(),
            Bucket::LoginPair(email, addr) => ["login:pair:", addr, ":", email].concat(),
            Bucket::EndpointSends(endpoint) => {
                let endpoint = endpoint.hyphenated().encode_lower(&mut buffer);
                ["webhook:sends:", endpoint].concat()
            }
            Bucket::LookupFailures(lookup_id) => ["badkey:", lookup_id].concat(),
            Bucket::Visitor(key, addr) => [
                "visitor:",
                key.hyphenated().encode_lower(&mut buffer),
                ":",
                addr,
            ]
            .concat(),
            Bucket::KeyInfo(key) => ["me:", key.hyphenated().encode_lower(&mut buffer)].concat(),
        }
    }
}

/// Requests admitted per bucket and the window they are counted over, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    /// Requests admitted per key per window unless the key overrides it.
    pub per_window: u32,
    /// Requests per client address per window that need key work (missing, bad or
    /// not yet verified keys): bounds the argon2 and database work bad keys can buy.
    pub unauthenticated_per_window: u32,
    /// Browser submissions admitted per key per client address per window unless the
    /// key overrides it: the visitor limit, checked before the key's own.
    pub visitor_per_window: u32,
    /// The sliding window (60 s; shorter only in tests).
    pub window: Duration,
}

/// Default requests per key per window.
pub const DEFAULT_LIMIT_PER_MINUTE: u32 = 100;

/// Default browser submissions per key per client address per window.
pub const DEFAULT_VISITOR_LIMIT_PER_MINUTE: u32 = 10;

/// Default requests per client address per window that carry no valid key.
pub const DEFAULT_UNAUTHENTICATED_LIMIT_PER_MINUTE: u32 = 60;

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            per_window: DEFAULT_LIMIT_PER_MINUTE,
            unauthenticated_per_window: DEFAULT_UNAUTHENTICATED_LIMIT_PER_MINUTE,
            visitor_per_window: DEFAULT_VISITOR_LIMIT_PER_MINUTE,
            window: Duration::from_secs(60),
        }
    }
}

impl LimitSettings {
    /// The window in whole seconds (at least 1), as the rate-limit headers state it.
    pub fn window_secs(&self) -> u64 {
        self.window.as_secs().max(1)
    }
}

/// A rate limiter: one decision per request, per [`Bucket`].
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync {
    /// Admits (and counts) the request if fewer than `limit` were admitted for
    /// `bucket` in the trailing `window`.
    async fn acquire(&self, bucket: &Bucket<'_>, limit: u32, window: Duration) -> Decision;

    /// Admits (and counts) `cost` requests at once (a batch's leads) if they all fit
    /// under `limit` in the trailing `window`; none are counted otherwise, and
    /// `reset_after` says when enough will have left for them to fit.
    async fn acquire_many(
        &self,
        bucket: &Bucket<'_>,
        cost: u32,
        limit: u32,
        window: Duration,
    ) -> Decision;

    /// What [`RateLimiter::acquire`] would decide now, without counting anything:
    /// for allowances that only failures use up.
    async fn peek(&self, bucket: &Bucket<'_>, limit: u32, window: Duration) -> Decision;

    /// Gives back the most recent admission of `bucket`: for allowances counted
    /// before the work they guard (a sign-in attempt) and refunded when it turned out
    /// not to count (the password was right). A bucket with nothing admitted is left
    /// as it is.
    async fn refund(&self, bucket: &Bucket<'_>);

    /// The backend deciding right now, for readiness and metrics (`in_process`, `redis`).
    fn backend(&self) -> &'static str;

    /// The Redis behind a shared backend (one node or a cluster), `None` without one.
    fn redis_mode(&self) -> Option<ciq_redis::RedisMode> {
        None
    }

    /// Whether a shared backend is configured but unreachable, so decisions are
    /// in-process for now (on a Redis Cluster: for some buckets at least).
    fn degraded(&self) -> bool {
        false
    }

    /// The share of buckets decided in-process although a shared backend is configured:
    /// 0 when it answers, 1 when it does not, and on a Redis Cluster the share of slots
    /// whose master is down.
    fn degraded_share(&self) -> f64 {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::Bucket;

    /// Each bucket's name, as its doc comment gives it (the Redis keys an operator
    /// finds are these names in a hash tag).
    #[test]
    fn every_bucket_is_named_as_documented() {
        let id = uuid::Uuid::parse_str("0193a5b2-7c1d-7e8f-9a0b-1c2d3e4f5a6b").unwrap();
        let named = [
            (Bucket::Key(id), "key:0193a5b2-7c1d-7e8f-9a0b-1c2d3e4f5a6b"),
            (Bucket::Address("10.0.0.1"), "addr:10.0.0.1"),
            (Bucket::LoginEmail("a@b.co"), "login:email:a@b.co"),
            (Bucket::LoginAddress("::1"), "login:addr:::1"),
            (Bucket::LoginPair("a@b.co", "::1"), "login:pair:::1:a@b.co"),
            (
                Bucket::EndpointSends(id),
                "webhook:sends:0193a5b2-7c1d-7e8f-9a0b-1c2d3e4f5a6b",
            ),
            (Bucket::LookupFailures("abc123"), "badkey:abc123"),
            (
                Bucket::Visitor(id, "2001:db8::/64"),
                "visitor:0193a5b2-7c1d-7e8f-9a0b-1c2d3e4f5a6b:2001:db8::/64",
            ),
            (
                Bucket::KeyInfo(id),
                "me:0193a5b2-7c1d-7e8f-9a0b-1c2d3e4f5a6b",
            ),
        ];
        for (bucket, name) in named {
            assert_eq!(bucket.name(), name);
        }
    }
}
