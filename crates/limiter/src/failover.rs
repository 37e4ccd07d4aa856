//! Redis when it answers, in-process when it does not: never an error, never a 5xx
//! because of the limiter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::{Bucket, Decision, InProcessLimiter, RateLimiter, RedisLimiter};

/// How often a degraded limiter checks whether Redis is back.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The production limiter: the shared Redis window while Redis answers; the
/// in-process window (exact per instance, not across instances) while it does not.
/// Each change of state is logged once, not per request.
pub struct FailoverLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    redis: RedisLimiter,
    local: InProcessLimiter,
    degraded: AtomicBool,
}

impl FailoverLimiter {
    /// Wraps `redis`, checking it once now so that a Redis that is down at start-up
    /// is reported at start-up.
    pub async fn new(redis: RedisLimiter) -> Self {
        let limiter = Self {
            inner: Arc::new(Inner {
                redis,
                local: InProcessLimiter::new(),
                degraded: AtomicBool::new(false),
            }),
        };
        match limiter.inner.redis.ping().await {
            Ok(()) => tracing::info!(
                redis = limiter.inner.redis.mode().as_str(),
                "rate limiter: shared Redis window"
            ),
            Err(err) => limiter.inner.degrade(&err),
        }
        limiter
    }
}

impl Inner {
    fn degrade(self: &Arc<Self>, err: &redis::RedisError) {
        if self.degraded.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            error = %err,
            "rate limiter degraded: Redis unreachable, limiting in-process until it returns"
        );
        let inner = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                let Some(inner) = inner.upgrade() else { return };
                if inner.redis.ping().await.is_ok() {
                    inner.degraded.store(false, Ordering::SeqCst);
                    tracing::info!("rate limiter restored: Redis reachable again");
                    return;
                }
            }
        });
    }
}

#[async_trait::async_trait]
impl RateLimiter for FailoverLimiter {
    async fn acquire(&self, bucket: &Bucket<'_>, limit: u32, window: Duration) -> Decision {
        let bucket = &bucket.name();
        if !self.inner.degraded.load(Ordering::SeqCst) {
            match self.inner.redis.try_acquire(bucket, limit, window).await {
                Ok(decision) => return decision,
                Err(err) => self.inner.degrade(&err),
            }
        }
        self.inner.local.acquire_now(bucket, limit, window)
    }

    async fn peek(&self, bucket: &Bucket<'_>, limit: u32, window: Duration) -> Decision {
        let bucket = &bucket.name();
        if !self.inner.degraded.load(Ordering::SeqCst) {
            match self.inner.redis.try_peek(bucket, limit, window).await {
                Ok(decision) => return decision,
                Err(err) => self.inner.degrade(&err),
            }
        }
        self.inner.local.peek_now(bucket, limit, window)
    }

    async fn refund(&self, bucket: &Bucket<'_>) {
        let bucket = &bucket.name();
        if !self.inner.degraded.load(Ordering::SeqCst) {
            match self.inner.redis.try_refund(bucket).await {
                Ok(()) => return,
                Err(err) => self.inner.degrade(&err),
            }
        }
        self.inner.local.refund_now(bucket);
    }

    fn backend(&self) -> &'static str {
        if self.degraded() {
            "in_process"
        } else {
            "redis"
        }
    }

    fn degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::SeqCst)
    }

    fn redis_mode(&self) -> Option<crate::RedisMode> {
        Some(self.inner.redis.mode())
    }
}
