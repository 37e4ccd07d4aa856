//! The shared backend: one sorted set per bucket in Redis, decided by one Lua script
//! in one round trip, on Redis's own clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::{RedisError, Script};

use ciq_redis::{RedisLink, RedisMode};

use crate::Decision;

/// The sliding log, atomically: drop what aged out, count, admit ARGV[4] admissions
/// (a batch's leads) if they all fit under the limit, refresh the expiry so idle buckets
/// vanish, and report when enough admissions leave the window for the request to fit
/// (the oldest one for an admitted request); with ARGV[4] = '0' only look (peek).
/// Scores are microseconds of Redis `TIME`, so instance clocks never matter. Refused
/// requests are not recorded.
const SLIDING_WINDOW_LUA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2]) * 1000
local cost = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
local wait = 1
if count + math.max(cost, 1) <= limit then
  allowed = 1
  if cost == 1 then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
  else
    for i = 1, cost do
      redis.call('ZADD', KEYS[1], now, ARGV[3] .. ':' .. i)
    end
  end
  count = count + cost
elseif cost > 1 then
  wait = math.min(count + cost - limit, count)
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local reset = 0
local freeing = redis.call('ZRANGE', KEYS[1], wait - 1, wait - 1, 'WITHSCORES')
if freeing[2] then reset = tonumber(freeing[2]) + window - now end
return {allowed, count, reset}
"#;

/// How long one decision may take before Redis counts as unavailable.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);

/// Exact sliding-window limiter shared by every instance using the same Redis (one node
/// or a cluster: each decision touches one key, whose slot's master decides).
pub struct RedisLimiter {
    conn: RedisLink,
    script: Script,
    prefix: String,
    member_prefix: String,
    sequence: AtomicU64,
}

impl RedisLimiter {
    /// A limiter on `url` (one node, or a cluster's comma-separated seed nodes) whose
    /// keys start with `prefix` (e.g. `ciq:rl:`). The connection is made lazily and
    /// re-made after failures, so this succeeds while Redis is down; only a malformed
    /// URL is an error.
    pub fn new(url: &str, prefix: &str) -> Result<Self, RedisError> {
        let conn = RedisLink::open(url, RESPONSE_TIMEOUT)?;
        Ok(Self {
            conn,
            script: Script::new(SLIDING_WINDOW_LUA),
            prefix: prefix.to_owned(),
            // Members must be unique across instances: a random instance id + a counter.
            member_prefix: format!("{:016x}", rand_u64()),
            sequence: AtomicU64::new(0),
        })
    }

    /// The Redis key of a bucket. The whole bucket name is the hash tag, so each key
    /// lives on one Redis Cluster slot and the script touches only that key.
    pub fn redis_key(&self, bucket: &str) -> String {
        format!("{}{{{bucket}}}", self.prefix)
    }

    /// One decision (counted when admitted), or the Redis error.
    pub async fn try_acquire(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
    ) -> Result<Decision, RedisError> {
        self.decide(bucket, limit, window, 1).await
    }

    /// One decision for `cost` admissions at once (all or none), or the Redis error.
    pub async fn try_acquire_many(
        &self,
        bucket: &str,
        cost: u32,
        limit: u32,
        window: Duration,
    ) -> Result<Decision, RedisError> {
        self.decide(bucket, limit, window, cost.max(1)).await
    }

    /// What [`RedisLimiter::try_acquire`] would decide, without counting.
    pub async fn try_peek(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
    ) -> Result<Decision, RedisError> {
        self.decide(bucket, limit, window, 0).await
    }

    /// `cost` admissions decided together; 0 only looks.
    async fn decide(
        &self,
        bucket: &str,
        limit: u32,
        window: Duration,
        cost: u32,
    ) -> Result<Decision, RedisError> {
        let member = format!(
            "{}:{}",
            self.member_prefix,
            self.sequence.fetch_add(1, Ordering::Relaxed)
        );
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let call = |command: &str, script: &str| {
            let mut cmd = redis::cmd(command);
            cmd.arg(script)
                .arg(1)
                .arg(self.redis_key(bucket))
                .arg(limit)
                .arg(window_ms)
                .arg(&member)
                .arg(cost);
            cmd
        };
        let mut conn = self.conn.clone();
        // EVALSHA, and on NOSCRIPT the script itself (EVAL), to the key's node, which
        // keeps it for next time. (The redis crate's own fallback, SCRIPT LOAD, goes to
        // every node of a cluster and fails while any one of them is down.)
        let answer = match call("EVALSHA", self.script.get_hash())
            .query_async(&mut conn)
            .await
        {
            Err(err)
                if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                call("EVAL", SLIDING_WINDOW_LUA)
                    .query_async(&mut conn)
                    .await
            }
            other => other,
        };
        let (allowed, count, reset_us): (i64, i64, i64) = answer?;
        let used = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(Decision {
            allowed: allowed == 1,
            limit,
            remaining: limit.saturating_sub(used),
            reset_after: Duration::from_micros(u64::try_from(reset_us).unwrap_or(0)),
        })
    }

    /// Gives back the most recent admission of `bucket` (the highest score: Redis
    /// `TIME` only grows), as [`crate::RateLimiter::refund`] describes.
    pub async fn try_refund(&self, bucket: &str) -> Result<(), RedisError> {
        let mut conn = self.conn.clone();
        redis::cmd("ZPOPMAX")
            .arg(self.redis_key(bucket))
            .query_async::<()>(&mut conn)
            .await
    }

    /// SHA1 of the decision script (what `EVALSHA` takes), for benchmarks.
    pub fn script_hash(&self) -> &str {
        self.script.get_hash()
    }

    /// Whether Redis answers a `PING` (on a cluster: every master).
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.conn.ping().await
    }

    /// Slots of a cluster whose master is down (0 on one node).
    pub fn unserved_slots(&self) -> usize {
        self.conn.unserved_slots()
    }

    /// One node or a cluster.
    pub fn mode(&self) -> RedisMode {
        self.conn.mode()
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    // RandomState is seeded from the OS per process; good enough to tell instances apart.
    RandomState::new().hash_one(std::time::SystemTime::now())
}
