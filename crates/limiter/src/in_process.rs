//! The single-instance backend: a sliding log per bucket in memory.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::{Bucket, Decision, RateLimiter};

const SHARDS: usize = 16;
/// Every this many decisions a shard drops buckets that have gone idle.
const SWEEP_EVERY: u32 = 1024;

#[derive(Default)]
struct Shard {
    buckets: HashMap<String, Log>,
    decisions: u32,
}

struct Log {
    window: Duration,
    admitted: VecDeque<Instant>,
}

/// Exact sliding-window limiter for one process. Memory is one timestamp per
/// admission in the window; idle buckets are swept.
pub struct InProcessLimiter {
    shards: Vec<Mutex<Shard>>,
}

impl Default for InProcessLimiter {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl InProcessLimiter {
    /// An empty limiter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides synchronously; the async trait method is this plus nothing.
    pub fn acquire_now(&self, bucket: &str, limit: u32, window: Duration) -> Decision {
        self.decide(bucket, limit, window, 1)
    }

    /// [`RateLimiter::acquire_many`], synchronously.
    pub fn acquire_many_now(
        &self,
        bucket: &str,
        cost: u32,
        limit: u32,
        window: Duration,
    ) -> Decision {
        self.decide(bucket, limit, window, cost.max(1))
    }

    /// [`RateLimiter::peek`], synchronously.
    pub fn peek_now(&self, bucket: &str, limit: u32, window: Duration) -> Decision {
        self.decide(bucket, limit, window, 0)
    }

    /// [`RateLimiter::refund`], synchronously.
    pub fn refund_now(&self, bucket: &str) {
        let mut shard = self.shard(bucket);
        if let Some(log) = shard.buckets.get_mut(bucket) {
            log.admitted.pop_back();
        }
    }

    fn shard(&self, bucket: &str) -> std::sync::MutexGuard<'_, Shard> {
        let mut hasher = DefaultHasher::new();
        bucket.hash(&mut hasher);
        self.shards[hasher.finish() as usize % SHARDS]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `cost` admissions decided together (all or none); 0 only looks.
    fn decide(&self, bucket: &str, limit: u32, window: Duration, cost: u32) -> Decision {
        let mut shard = self.shard(bucket);
        let now = Instant::now();

        shard.decisions = shard.decisions.wrapping_add(1);
        if shard.decisions.is_multiple_of(SWEEP_EVERY) {
            shard.buckets.retain(|_, b| {
                b.admitted
                    .back()
                    .is_some_and(|&last| now.duration_since(last) < b.window)
            });
        }

        let entry = shard
            .buckets
            .entry(bucket.to_owned())
            .or_insert_with(|| Log {
                window,
                admitted: VecDeque::new(),
            });
        entry.window = window;
        while entry
            .admitted
            .front()
            .is_some_and(|&t| now.duration_since(t) >= window)
        {
            entry.admitted.pop_front();
        }
        let count = entry.admitted.len() as u64;
        let allowed = count + u64::from(cost.max(1)) <= u64::from(limit);
        // The admission whose leaving lets this request fit: the oldest for one, more
        // for a refused request of several.
        let mut wait = 1;
        if allowed {
            entry
                .admitted
                .extend(std::iter::repeat_n(now, cost as usize));
        } else if cost > 1 {
            wait = (count + u64::from(cost))
                .saturating_sub(u64::from(limit))
                .min(count);
        }
        let used = entry.admitted.len() as u32;
        let reset_after = usize::try_from(wait)
            .ok()
            .and_then(|wait| entry.admitted.get(wait.saturating_sub(1)))
            .map_or(Duration::ZERO, |&freeing| {
                (freeing + window).duration_since(now)
            });
        Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(used),
            reset_after,
        }
    }
}

#[async_trait::async_trait]
impl RateLimiter for InProcessLimiter {
    async fn acquire(&self, bucket: &Bucket<'_>, limit: u32, window: Duration) -> Decision {
        let bucket = &bucket.name();
        self.acquire_now(bucket, limit, window)
    }

    async fn acquire_many(
        &self,
        bucket: &Bucket<'_>,
        cost: u32,
        limit: u32,
        window: Duration,
    ) -> Decision {
        self.acquire_many_now(&bucket.name(), cost, limit, window)
    }

    async fn peek(&self, bucket: &Bucket<'_>, limit: u32, window: Duration) -> Decision {
        let bucket = &bucket.name();
        self.peek_now(bucket, limit, window)
    }

    async fn refund(&self, bucket: &Bucket<'_>) {
        self.refund_now(&bucket.name());
    }

    fn backend(&self) -> &'static str {
        "in_process"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn admits_exactly_the_limit_then_refuses() {
        let limiter = InProcessLimiter::new();
        for i in 0..100 {
            let d = limiter.acquire_now("k", 100, MINUTE);
            assert!(d.allowed, "request {i} refused");
            assert_eq!(d.remaining, 99 - i);
        }
        let refused = limiter.acquire_now("k", 100, MINUTE);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_after, MINUTE);
        assert_eq!(refused.reset_after_secs(), 60);
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_slides_one_admission_at_a_time() {
        let limiter = InProcessLimiter::new();
        for _ in 0..3 {
            assert!(limiter.acquire_now("k", 3, MINUTE).allowed);
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        // t=30 s: full; the first admission (t=0) frees at t=60 s.
        let refused = limiter.acquire_now("k", 3, MINUTE);
        assert!(!refused.allowed);
        assert_eq!(refused.reset_after, Duration::from_secs(30));
        tokio::time::advance(refused.reset_after).await;
        // Exactly one slot freed: one admitted, the next refused.
        assert!(limiter.acquire_now("k", 3, MINUTE).allowed);
        assert!(!limiter.acquire_now("k", 3, MINUTE).allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn refused_requests_do_not_count() {
        let limiter = InProcessLimiter::new();
        assert!(limiter.acquire_now("k", 1, MINUTE).allowed);
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(5)).await;
            assert!(!limiter.acquire_now("k", 1, MINUTE).allowed);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(limiter.acquire_now("k", 1, MINUTE).allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn several_admissions_are_taken_all_or_none() {
        let limiter = InProcessLimiter::new();
        assert!(limiter.acquire_many_now("k", 4, 10, MINUTE).allowed);
        tokio::time::advance(Duration::from_secs(10)).await;
        let d = limiter.acquire_many_now("k", 4, 10, MINUTE);
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
        // 3 do not fit into the 2 left, and nothing is taken: 2 single ones still fit.
        tokio::time::advance(Duration::from_secs(10)).await;
        let refused = limiter.acquire_many_now("k", 3, 10, MINUTE);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 2);
        // One more must leave: the first four leave together at t=60 s.
        assert_eq!(refused.reset_after, Duration::from_secs(40));
        assert!(limiter.acquire_now("k", 10, MINUTE).allowed);
        assert!(limiter.acquire_now("k", 10, MINUTE).allowed);
        assert!(!limiter.acquire_now("k", 10, MINUTE).allowed);
        // More than the limit can never fit; it waits for the whole window to empty.
        let never = limiter.acquire_many_now("other", 11, 10, MINUTE);
        assert!(!never.allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn buckets_are_independent() {
        let limiter = InProcessLimiter::new();
        assert!(limiter.acquire_now("a", 1, MINUTE).allowed);
        assert!(!limiter.acquire_now("a", 1, MINUTE).allowed);
        assert!(limiter.acquire_now("b", 1, MINUTE).allowed);
    }

    #[test]
    fn reset_seconds_round_up() {
        let d = Decision {
            allowed: false,
            limit: 1,
            remaining: 0,
            reset_after: Duration::from_millis(1001),
        };
        assert_eq!(d.reset_after_secs(), 2);
    }
}
