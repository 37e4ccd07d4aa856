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
    /// The bucket whose decision failed first: before returning to Redis the probe
    /// asks about it, which also makes a cluster client re-read a slot map that still
    /// names a dead master (a PING to every master it knows would pass without it).
    failed_bucket: std::sync::Mutex<Option<String>>,
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
                failed_bucket: std::sync::Mutex::new(None),
            }),
        };
        match limiter.inner.redis.ping().await {
            Ok(()) => tracing::info!(
                redis = limiter.inner.redis.mode().as_str(),
                "rate limiter: shared Redis window"
            ),
            Err(err) => limiter.inner.degrade(None, &err),
        }
        limiter
    }
}

impl Inner {
    fn degrade(self: &Arc<Self>, bucket: Option<&str>, err: &redis::RedisError) {
        if self.degraded.swap(true, Ordering::SeqCst) {
            return;
        }
        *self.failed_bucket_slot() = bucket.map(str::to_owned);
        tracing::warn!(
            error = %err,
            "rate limiter degraded: Redis unreachable, limiting in-process until it returns"
        );
        let inner = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                let Some(inner) = inner.upgrade() else { return };
                if inner.redis.ping().await.is_ok() && inner.failed_bucket_answers().await {
                    inner.degraded.store(false, Ordering::SeqCst);
                    tracing::info!("rate limiter restored: Redis reachable again");
                    return;
                }
            }
        });
    }
}

impl Inner {
    fn failed_bucket_slot(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.failed_bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether Redis decides for the bucket that failed (without counting).
    async fn failed_bucket_answers(&self) -> bool {
        let bucket = self.failed_bucket_slot().clone();
        match bucket {
            Some(bucket) => self
                .redis
                .try_peek(&bucket, 1, PROBE_INTERVAL)
                .await
                .is_ok(),
            None => true,
        }
    }
}

#[async_trait::async_trait]
impl RateLimiter for FailoverLimiter {
    async fn acquire(&self, bucket: &Bucket<'_>, limit: u32, window: Duration) -> Decision {
        let bucket = &bucket.name();
        if !self.inner.degraded.load(Ordering::SeqCst) {
            match self.inner.redis.try_acquire(bucket, limit, window).await {
                Ok(decision) => return decision,
                Err(err) => self.inner.degrade(Some(bucket), &err),
            }
        }
        self.inner.local.acquire_now(bucket, limit, window)
    }

    async fn acquire_many(
        &self,
        bucket: &Bucket<'_>,
        cost: u32,
        limit: u32,
        window: Duration,
    ) -> Decision {
        let bucket = &bucket.name();
        if !self.inner.degraded.load(Ordering::SeqCst) {
            match self
                .inner
                .redis
                .try_acquire_many(bucket, cost, limit, window)
                .await
            {
                Ok(decision) => return decision,
                Err(err) => self.inner.degrade(Some(bucket), &err),
            }
        }
        self.inner
            .local
            .acquire_many_now(bucket, cost, limit, window)
    }

    async fn peek(&self, bucket: &Bucket<'_>, limit: u32, window: Duration) -> Decision {
        let bucket = &bucket.name();
        if !self.inner.degraded.load(Ordering::SeqCst) {
            match self.inner.redis.try_peek(bucket, limit, window).await {
                Ok(decision) => return decision,
                Err(err) => self.inner.degrade(Some(bucket), &err),
            }
        }
        self.inner.local.peek_now(bucket, limit, window)
    }

    async fn refund(&self, bucket: &Bucket<'_>) {
        let bucket = &bucket.name();
        if !self.inner.degraded.load(Ordering::SeqCst) {
            match self.inner.redis.try_refund(bucket).await {
                Ok(()) => return,
                Err(err) => self.inner.degrade(Some(bucket), &err),
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

    fn redis_mode(&self) -> Option<ciq_redis::RedisMode> {
        Some(self.inner.redis.mode())
    }
}
