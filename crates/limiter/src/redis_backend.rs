//! The shared backend: one sorted set per bucket in Redis, decided by one Lua script
//! on Redis's own clock.
//!
//! On one Redis node the decisions of one instance are sent together: while one script
//! call is out, the decisions that arrive wait for it and then go as the next call's
//! keys (as many as [`MAX_BATCH`]), so under load Redis runs the script, reads the
//! clock and answers once for many requests. On a Redis Cluster each decision is a
//! call of its own to its slot's master (one call may only name keys of one slot, and
//! concurrent requests' buckets are spread over all of them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::{RedisError, Script};
use tokio::sync::{mpsc, oneshot};

use ciq_redis::{RedisLink, RedisMode};

use crate::Decision;

/// The sliding log for each key of the call, atomically and in order: drop what aged
/// out, count, admit `cost` admissions (a batch's leads) if they all fit under the
/// limit and then set the key to expire a window later (when its newest admission ages
/// out: idle buckets vanish), and report when enough admissions leave the window for
/// the request to fit (the oldest one for an admitted request); with `cost` = '0' only
/// look (peek). Each key `KEYS[i]` takes four arguments from `ARGV[4i-3]`: limit,
/// window in ms, a member name unique to the decision, cost; the answer is three
/// integers per key (allowed, count, microseconds until a slot frees). Scores are
/// microseconds of Redis `TIME`, read once per call and handed to Redis as the digits
/// it gave (no number formatting per decision), so instance clocks never matter.
/// Refused requests are not recorded.
const SLIDING_WINDOW_LUA: &str = r#"
local t = redis.call('TIME')
local stamp = t[1] .. string.sub('00000' .. t[2], -6)
local now = tonumber(stamp)
local cutoffs = {}
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local a = (i - 1) * 4
  local limit = tonumber(ARGV[a + 1])
  local window = tonumber(ARGV[a + 2]) * 1000
  local member = ARGV[a + 3]
  local cost = tonumber(ARGV[a + 4])
  local cutoff = cutoffs[window]
  if not cutoff then
    cutoff = string.format('%d', now - window)
    cutoffs[window] = cutoff
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
  local count = redis.call('ZCARD', key)
  local allowed = 0
  local wait = 1
  if count + math.max(cost, 1) <= limit then
    allowed = 1
    if cost == 1 then
      redis.call('ZADD', key, stamp, member)
    else
      for j = 1, cost do
        redis.call('ZADD', key, stamp, member .. ':' .. j)
      end
    end
    if cost > 0 then redis.call('PEXPIRE', key, ARGV[a + 2]) end
    count = count + cost
  elseif cost > 1 then
    wait = math.min(count + cost - limit, count)
  end
  local reset = 0
  local freeing = redis.call('ZRANGE', key, wait - 1, wait - 1, 'WITHSCORES')
  if freeing[2] then reset = tonumber(freeing[2]) + window - now end
  out[#out + 1] = allowed
  out[#out + 1] = count
  out[#out + 1] = reset
end
return out
"#;

/// Most decisions one script call carries (one node): a call's size stays bounded
/// however far Redis falls behind.
pub const MAX_BATCH: usize = 128;

/// How long one decision may take before Redis counts as unavailable.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);

/// Exact sliding-window limiter shared by every instance using the same Redis (one node
/// or a cluster: each bucket is one key, whose slot's master decides).
pub struct RedisLimiter {
    conn: RedisLink,
    script: Script,
    prefix: String,
    member_prefix: String,
    sequence: AtomicU64,
    /// One node: where decisions wait for the next script call (the task that makes
    /// the calls is started by the first decision: it needs a runtime).
    batches: OnceLock<mpsc::UnboundedSender<Pending>>,
    /// Script calls made so far (decisions / calls = decisions per call).
    calls: Arc<AtomicU64>,
}

/// One decision's part of a script call.
struct Ask {
    key: String,
    limit: u32,
    window_ms: u64,
    member: String,
    cost: u32,
}

/// What Redis answered for one decision: allowed (1/0), admissions in the window,
/// microseconds until a slot frees.
type Answer = (i64, i64, i64);

/// A decision waiting for the next script call, and where its answer goes.
struct Pending {
    ask: Ask,
    answer: oneshot::Sender<Result<Answer, RedisError>>,
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
            batches: OnceLock::new(),
            calls: Arc::default(),
        })
    }

    /// The Redis key of a bucket. The whole bucket name is the hash tag, so each key
    /// lives on one Redis Cluster slot and the script touches only that key.
    pub fn redis_key(&self, bucket: &str) -> String {
        [self.prefix.as_str(), "{", bucket, "}"].concat()
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
        let ask = Ask {
            key: self.redis_key(bucket),
            limit,
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1),
            member: [
                self.member_prefix.as_str(),
                ":",
                itoa::Buffer::new().format(self.sequence.fetch_add(1, Ordering::Relaxed)),
            ]
            .concat(),
            cost,
        };
        let (allowed, count, reset_us) = match self.conn.mode() {
            RedisMode::Single => {
                let (answer, answered) = oneshot::channel();
                self.batches()
                    .send(Pending { ask, answer })
                    .map_err(|_| gone())?;
                answered.await.map_err(|_| gone())??
            }
            RedisMode::Cluster => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                call(
                    &mut self.conn.clone(),
                    &self.script,
                    std::slice::from_ref(&ask),
                )
                .await?[0]
            }
        };
        let used = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(Decision {
            allowed: allowed == 1,
            limit,
            remaining: limit.saturating_sub(used),
            reset_after: Duration::from_micros(u64::try_from(reset_us).unwrap_or(0)),
        })
    }

    /// Where decisions wait for the next script call; the first caller starts the task
    /// that makes the calls (it ends when the limiter is dropped).
    fn batches(&self) -> &mpsc::UnboundedSender<Pending> {
        self.batches.get_or_init(|| {
            let (sender, waiting) = mpsc::unbounded_channel();
            tokio::spawn(send_batches(
                self.conn.clone(),
                self.script.clone(),
                self.calls.clone(),
                waiting,
            ));
            sender
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

    /// Script calls this limiter has made: with the decisions asked, how many each call
    /// carried (benchmarks print it).
    pub fn script_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
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

/// The error of a decision whose call task is gone (the runtime is shutting down).
fn gone() -> RedisError {
    RedisError::from((
        redis::ErrorKind::Io,
        "the rate limiter's Redis calls have stopped",
    ))
}

/// Makes the script calls for one node, one at a time: takes the first waiting decision
/// and every decision that waits behind it (up to [`MAX_BATCH`]), sends them as one
/// call, hands each its answer (a failed call fails all of its decisions alike), and
/// only then looks again, so the decisions that arrive while a call is out gather for
/// the next. (Two calls out at once measured no better: docs/performance.md.)
async fn send_batches(
    mut conn: RedisLink,
    script: Script,
    calls: Arc<AtomicU64>,
    mut waiting: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        calls.fetch_add(1, Ordering::Relaxed);
        let (asks, answers): (Vec<Ask>, Vec<_>) = batch
            .into_iter()
            .map(|pending| (pending.ask, pending.answer))
            .unzip();
        match call(&mut conn, &script, &asks).await {
            Ok(answered) => {
                for (answer, decision) in answers.into_iter().zip(answered) {
                    let _ = answer.send(Ok(decision));
                }
            }
            Err(err) => {
                for answer in answers {
                    let _ = answer.send(Err(err.clone()));
                }
            }
        }
    }
}

/// One script call deciding `asks` in order (on a cluster they must share a slot):
/// `EVALSHA`, and on `NOSCRIPT` the script itself (`EVAL`) to the keys' node, which
/// keeps it for next time. (The redis crate's own fallback, `SCRIPT LOAD`, goes to every
/// node of a cluster and fails while any one of them is down.)
async fn call(
    conn: &mut RedisLink,
    script: &Script,
    asks: &[Ask],
) -> Result<Vec<Answer>, RedisError> {
    let command = |command: &str, script: &str| {
        let mut cmd = redis::cmd(command);
        cmd.arg(script).arg(asks.len());
        for ask in asks {
            cmd.arg(&ask.key);
        }
        for ask in asks {
            cmd.arg(ask.limit)
                .arg(ask.window_ms)
                .arg(&ask.member)
                .arg(ask.cost);
        }
        cmd
    };
    let answer: Vec<i64> = match command("EVALSHA", script.get_hash())
        .query_async(conn)
        .await
    {
        Err(err) if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            command("EVAL", SLIDING_WINDOW_LUA).query_async(conn).await
        }
        other => other,
    }?;
    if answer.len() != asks.len() * 3 {
        return Err(RedisError::from((
            redis::ErrorKind::Parse,
            "the limiter script answered another number of decisions than it was asked",
        )));
    }
    Ok(answer
        .chunks_exact(3)
        .map(|one| (one[0], one[1], one[2]))
        .collect())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    // RandomState is seeded from the OS per process; good enough to tell instances apart.
    RandomState::new().hash_one(std::time::SystemTime::now())
}
