//! Redis when it answers, in-process when it does not: never an error, never a 5xx
//! because of the limiter.
//!
//! On one Redis node the whole limiter degrades (one flag, a probe every second). On a
//! Redis Cluster each bucket degrades with the master of its slot: the link marks a
//! master down when its connection fails and routes to the replica that takes over, so
//! buckets on the other masters stay exact throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ciq_redis::RedisMode;

use crate::{Bucket, Decision, InProcessLimiter, RateLimiter, RedisLimiter};

/// How often a degraded limiter checks whether Redis is back.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The production limiter: the shared Redis window while Redis answers; the
/// in-process window (exact per instance, not across instances) while it does not —
/// on a cluster, for the buckets of the failed master's slots only. Each change of
/// state is logged once, not per request.
pub struct FailoverLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    redis: RedisLimiter,
    local: InProcessLimiter,
    /// One node only: every decision is in-process until the probe finds Redis back.
    degraded: AtomicBool,
    /// The bucket whose decision failed first: before returning to Redis the probe
    /// asks about it (a `PING` alone would pass on a node that cannot run the script).
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
            Err(err) if limiter.inner.redis.mode() == RedisMode::Cluster => tracing::warn!(
                error = %err,
                "rate limiter: the Redis Cluster does not answer in full; buckets on masters \
                 that do not answer are limited in-process until they do"
            ),
            Err(err) => limiter.inner.degrade(None, &err),
        }
        limiter
    }
}

impl Inner {
    /// Whether the shared window is asked first. On a cluster always: the link fails at
    /// once for a slot whose master is down (no connection attempt), which costs what
    /// asking it about the slot would, and nothing extra while all is well.
    fn shared_decides(&self) -> bool {
        match self.redis.mode() {
            RedisMode::Single => !self.degraded.load(Ordering::SeqCst),
            RedisMode::Cluster => true,
        }
    }

    /// A decision Redis did not give. One node: the whole limiter degrades. A cluster:
    /// this decision is in-process; the link has marked the master down if its
    /// connection failed, which takes that master's buckets with it until it is back.
    fn failed(self: &Arc<Self>, bucket: &str, err: &redis::RedisError) {
        match self.redis.mode() {
            RedisMode::Single => self.degrade(Some(bucket), err),
            RedisMode::Cluster => {
                tracing::debug!(error = %err, "rate limiter: decided in-process for one request");
            }
        }
    }

    /// The share of buckets decided in-process: 0 or 1 on one node, the share of slots
    /// whose master is down on a cluster.
    fn degraded_share(&self) -> f64 {
        match self.redis.mode() {
            RedisMode::Single => f64::from(u8::from(self.degraded.load(Ordering::SeqCst))),
            RedisMode::Cluster => self.redis.unserved_slots() as f64 / ciq_redis::SLOTS as f64,
        }
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
        if self.inner.shared_decides() {
            match self.inner.redis.try_acquire(bucket, limit, window).await {
                Ok(decision) => return decision,
                Err(err) => self.inner.failed(bucket, &err),
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
        if self.inner.shared_decides() {
            match self
                .inner
                .redis
                .try_acquire_many(bucket, cost, limit, window)
                .await
            {
                Ok(decision) => return decision,
                Err(err) => self.inner.failed(bucket, &err),
            }
        }
        self.inner
            .local
            .acquire_many_now(bucket, cost, limit, window)
    }

    async fn peek(&self, bucket: &Bucket<'_>, limit: u32, window: Duration) -> Decision {
        let bucket = &bucket.name();
        if self.inner.shared_decides() {
            match self.inner.redis.try_peek(bucket, limit, window).await {
                Ok(decision) => return decision,
                Err(err) => self.inner.failed(bucket, &err),
            }
        }
        self.inner.local.peek_now(bucket, limit, window)
    }

    async fn refund(&self, bucket: &Bucket<'_>) {
        let bucket = &bucket.name();
        if self.inner.shared_decides() {
            match self.inner.redis.try_refund(bucket).await {
                Ok(()) => return,
                Err(err) => self.inner.failed(bucket, &err),
            }
        }
        self.inner.local.refund_now(bucket);
    }

    fn backend(&self) -> &'static str {
        // On a cluster with one master down the shared window still decides for the
        // rest: `redis`, with `degraded_share` saying how much is in-process.
        if self.degraded_share() >= 1.0 {
            "in_process"
        } else {
            "redis"
        }
    }

    fn degraded(&self) -> bool {
        self.degraded_share() > 0.0
    }

    fn degraded_share(&self) -> f64 {
        self.inner.degraded_share()
    }

    fn redis_mode(&self) -> Option<ciq_redis::RedisMode> {
        Some(self.inner.redis.mode())
    }
}
