//! One suite, both backends: the in-process window and the Redis window must make
//! the same decisions. Redis (`CIQ_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`)
//! is required under CI and skipped with a message elsewhere when unreachable.

use std::sync::Arc;
use std::time::Duration;

use ciq_limiter::{Decision, InProcessLimiter, RedisLimiter};

trait Subject: Send + Sync {
    async fn hit(&self, bucket: &str, limit: u32, window: Duration) -> Decision;
    async fn peek(&self, bucket: &str, limit: u32, window: Duration) -> Decision;
    async fn hit_many(&self, bucket: &str, cost: u32, limit: u32, window: Duration) -> Decision;
    async fn refund(&self, bucket: &str);
}

impl Subject for InProcessLimiter {
    async fn hit(&self, bucket: &str, limit: u32, window: Duration) -> Decision {
        self.acquire_now(bucket, limit, window)
    }
    async fn peek(&self, bucket: &str, limit: u32, window: Duration) -> Decision {
        self.peek_now(bucket, limit, window)
    }
    async fn hit_many(&self, bucket: &str, cost: u32, limit: u32, window: Duration) -> Decision {
        self.acquire_many_now(bucket, cost, limit, window)
    }
    async fn refund(&self, bucket: &str) {
        self.refund_now(bucket);
    }
}

impl Subject for RedisLimiter {
    async fn hit(&self, bucket: &str, limit: u32, window: Duration) -> Decision {
        self.try_acquire(bucket, limit, window)
            .await
            .expect("Redis answers")
    }
    async fn peek(&self, bucket: &str, limit: u32, window: Duration) -> Decision {
        self.try_peek(bucket, limit, window)
            .await
            .expect("Redis answers")
    }
    async fn hit_many(&self, bucket: &str, cost: u32, limit: u32, window: Duration) -> Decision {
        self.try_acquire_many(bucket, cost, limit, window)
            .await
            .expect("Redis answers")
    }
    async fn refund(&self, bucket: &str) {
        self.try_refund(bucket).await.expect("Redis answers");
    }
}

fn redis_url() -> String {
    std::env::var("CIQ_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A Redis limiter with a prefix of its own, or `None` (skip) outside CI when
/// Redis is unreachable.
async fn redis_limiter(prefix: &str) -> Option<RedisLimiter> {
    let limiter = RedisLimiter::new(&redis_url(), prefix).expect("a valid URL");
    match limiter.ping().await {
        Ok(()) => Some(limiter),
        Err(err) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping Redis test: {} unreachable ({err})", redis_url());
            None
        }
        Err(err) => panic!("Redis is required under CI: {}: {err}", redis_url()),
    }
}

fn unique_prefix() -> String {
    format!("ciq-test:{}:", uuid::Uuid::new_v4().simple())
}

async fn admits_exactly_the_limit_then_refuses(s: &impl Subject) {
    let window = Duration::from_secs(60);
    for i in 0..5u32 {
        let d = s.hit("k", 5, window).await;
        assert!(d.allowed, "request {i}");
        assert_eq!(d.remaining, 4 - i);
        assert_eq!(d.limit, 5);
    }
    let refused = s.hit("k", 5, window).await;
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    assert!(refused.reset_after <= window && refused.reset_after > window - Duration::from_secs(5));
    assert!(
        s.hit("other", 5, window).await.allowed,
        "buckets are independent"
    );
}

async fn the_window_slides_and_retry_after_is_honest(s: &impl Subject) {
    let window = Duration::from_millis(1500);
    assert!(s.hit("k", 2, window).await.allowed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.hit("k", 2, window).await.allowed);
    let refused = s.hit("k", 2, window).await;
    assert!(!refused.allowed);
    // The oldest admission (t=0) leaves at t=1.5 s: about 1 s from now.
    assert!(
        refused.reset_after > Duration::from_millis(800)
            && refused.reset_after <= Duration::from_millis(1000),
        "{:?}",
        refused.reset_after
    );
    tokio::time::sleep(refused.reset_after + Duration::from_millis(20)).await;
    // Exactly one slot freed.
    assert!(s.hit("k", 2, window).await.allowed);
    assert!(!s.hit("k", 2, window).await.allowed);
}

async fn refused_requests_do_not_count(s: &impl Subject) {
    let window = Duration::from_millis(1000);
    assert!(s.hit("k", 1, window).await.allowed);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!s.hit("k", 1, window).await.allowed);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        s.hit("k", 1, window).await.allowed,
        "refusals must not extend the window"
    );
}

async fn peeking_never_counts(s: &impl Subject) {
    let window = Duration::from_secs(60);
    for _ in 0..10 {
        let d = s.peek("k", 2, window).await;
        assert!(d.allowed);
        assert_eq!(d.remaining, 2);
    }
    assert!(s.hit("k", 2, window).await.allowed);
    assert_eq!(s.peek("k", 2, window).await.remaining, 1);
    assert!(s.hit("k", 2, window).await.allowed);
    let full = s.peek("k", 2, window).await;
    assert!(!full.allowed);
    assert_eq!(full.remaining, 0);
    assert!(full.reset_after > Duration::from_secs(55));
}

async fn a_refund_gives_back_the_latest_admission(s: &impl Subject) {
    let window = Duration::from_secs(60);
    for _ in 0..3 {
        assert!(s.hit("k", 3, window).await.allowed);
    }
    assert!(!s.hit("k", 3, window).await.allowed);
    s.refund("k").await;
    assert_eq!(s.peek("k", 3, window).await.remaining, 1);
    assert!(s.hit("k", 3, window).await.allowed);
    assert!(!s.hit("k", 3, window).await.allowed);
    // Nothing admitted, nothing to give back.
    s.refund("empty").await;
    assert_eq!(s.peek("empty", 3, window).await.remaining, 3);
}

async fn several_admissions_fit_whole_or_not_at_all(s: &impl Subject) {
    let window = Duration::from_millis(1500);
    let first = s.hit_many("k", 4, 10, window).await;
    assert_eq!((first.allowed, first.remaining), (true, 6));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.hit_many("k", 4, 10, window).await.remaining, 2);
    // 3 do not fit into the 2 left and none is taken; the first four must leave
    // (about 1 s from now) before they fit.
    let refused = s.hit_many("k", 3, 10, window).await;
    assert_eq!((refused.allowed, refused.remaining), (false, 2));
    assert!(
        refused.reset_after > Duration::from_millis(800)
            && refused.reset_after <= Duration::from_millis(1000),
        "{:?}",
        refused.reset_after
    );
    assert_eq!(s.peek("k", 10, window).await.remaining, 2);
    assert!(s.hit("k", 10, window).await.allowed);
    assert!(s.hit("k", 10, window).await.allowed);
    assert!(!s.hit("k", 10, window).await.allowed);
    tokio::time::sleep(refused.reset_after + Duration::from_millis(20)).await;
    assert!(s.hit_many("k", 3, 10, window).await.allowed);
    // More than the limit never fits.
    assert!(!s.hit_many("wide", 11, 10, window).await.allowed);
    assert_eq!(s.peek("wide", 10, window).await.remaining, 10);
}

macro_rules! suite {
    ($($name:ident),*) => {
        mod in_process {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&ciq_limiter::InProcessLimiter::new()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(limiter) = super::redis_limiter(&super::unique_prefix()).await {
                        super::$name(&limiter).await;
                    }
                }
            )*
        }
    };
}

suite!(
    admits_exactly_the_limit_then_refuses,
    the_window_slides_and_retry_after_is_honest,
    refused_requests_do_not_count,
    peeking_never_counts,
    a_refund_gives_back_the_latest_admission,
    several_admissions_fit_whole_or_not_at_all
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_redis_limiters_never_admit_more_than_the_limit_together() {
    let prefix = unique_prefix();
    let mut instances = Vec::new();
    for _ in 0..3 {
        let Some(limiter) = redis_limiter(&prefix).await else {
            return;
        };
        instances.push(Arc::new(limiter));
    }
    for round in 0..5 {
        let bucket = format!("round-{round}");
        let tasks: Vec<_> = (0..150)
            .map(|i| {
                let limiter = instances[i % 3].clone();
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    limiter
                        .try_acquire(&bucket, 100, Duration::from_secs(60))
                        .await
                        .unwrap()
                        .allowed
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += usize::from(task.await.unwrap());
        }
        assert_eq!(admitted, 100, "round {round}");
    }
}

/// One instance's concurrent decisions travel together (one script call carries many)
/// and stay exact per bucket, whatever else shares the call: admissions of several
/// leads, peeks and decisions for other buckets with other limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_share_script_calls_and_stay_exact() {
    let prefix = unique_prefix();
    let Some(limiter) = redis_limiter(&prefix).await else {
        return;
    };
    let limiter = Arc::new(limiter);
    let window = Duration::from_secs(60);
    let tasks: Vec<_> = (0..600)
        .map(|i| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                match i % 4 {
                    0 => ("a", limiter.try_acquire("a", 50, window).await.unwrap()),
                    1 => ("b", limiter.try_acquire("b", 30, window).await.unwrap()),
                    2 => (
                        "c",
                        limiter.try_acquire_many("c", 3, 60, window).await.unwrap(),
                    ),
                    _ => ("peek", limiter.try_peek("a", 50, window).await.unwrap()),
                }
            })
        })
        .collect();
    let mut admitted = std::collections::HashMap::<&str, u32>::new();
    for task in tasks {
        let (bucket, decision) = task.await.unwrap();
        if decision.allowed && bucket != "peek" {
            *admitted.entry(bucket).or_default() += if bucket == "c" { 3 } else { 1 };
        }
    }
    assert_eq!(
        (admitted["a"], admitted["b"], admitted["c"]),
        (50, 30, 60),
        "{admitted:?}"
    );
    // What Redis holds agrees, and nothing was counted for the peeks.
    for (bucket, limit) in [("a", 50), ("b", 30), ("c", 60)] {
        let now = limiter.try_peek(bucket, limit, window).await.unwrap();
        assert_eq!((now.allowed, now.remaining), (false, 0), "{bucket}");
    }
    let calls = limiter.script_calls();
    assert!(
        calls < 600,
        "600 concurrent decisions took {calls} script calls: none travelled together"
    );
}

/// A Redis that does not answer fails every waiting decision with an error, promptly
/// and each once: none is left waiting for a call that never comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_every_waiting_decision_fails_within_the_bound() {
    let limiter = Arc::new(RedisLimiter::new("redis://127.0.0.1:1", "ciq-test:").unwrap());
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                limiter
                    .try_acquire(&format!("k{i}"), 10, Duration::from_secs(60))
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_err());
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn keys_carry_a_hash_tag_and_expire_when_idle() {
    let prefix = unique_prefix();
    let Some(limiter) = redis_limiter(&prefix).await else {
        return;
    };
    let key = limiter.redis_key("key:abc");
    assert_eq!(key, format!("{prefix}{{key:abc}}"));
    limiter
        .try_acquire("key:abc", 10, Duration::from_secs(30))
        .await
        .unwrap();
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((29_000..=30_000).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn a_redis_that_lost_its_scripts_still_decides() {
    let prefix = unique_prefix();
    let Some(limiter) = redis_limiter(&prefix).await else {
        return;
    };
    let window = Duration::from_secs(30);
    assert!(
        limiter
            .try_acquire("key:a", 2, window)
            .await
            .unwrap()
            .allowed
    );
    // A restart, a failover to a fresh replica or SCRIPT FLUSH: EVALSHA answers
    // NOSCRIPT and the decision is made with the script itself, which Redis keeps.
    let client = ::redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    ::redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let second = limiter.try_acquire("key:a", 2, window).await.unwrap();
    assert_eq!((second.allowed, second.remaining), (true, 0));
    let exists: Vec<bool> = ::redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(limiter.script_hash())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, vec![true]);
    assert!(
        !limiter
            .try_acquire("key:a", 2, window)
            .await
            .unwrap()
            .allowed
    );
}
