//! The outage spool: leads accepted while PostgreSQL is down, kept in Redis until the
//! store is back, then stored exactly once with the ids and `created_at` they were
//! answered with.
//!
//! A spooled request is one entry of one of [`STREAMS`] Redis streams. Each stream's
//! keys share a hash tag (`{s3}`), so on a Redis Cluster the streams spread over the
//! masters, and a request's `Idempotency-Key` record lives in the same slot as its
//! entry: the check of the key, the bound on the stream and the write are one script.
//! On a cluster the answer also waits for one replica to hold the write (`WAIT`).
//!
//! Every instance drains every stream through one consumer group: an entry is
//! acknowledged (and deleted) only after [`ciq_leads::spooled::apply`] committed its
//! leads, which records the entry as applied in the same transaction, so an entry read
//! again (a crash before the acknowledgement; another instance claiming a dead
//! consumer's entries with `XAUTOCLAIM`) stores nothing twice.
//!
//! Spooling is on only while every master's `maxmemory-policy` is `noeviction`: an
//! evicting Redis could drop an entry, a lead, silently.

mod drain;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ciq_leads::spooled::SpooledRequest;
use ciq_redis::{RedisLink, RedisMode};
use redis::RedisError;
use uuid::Uuid;

pub use drain::{Drainer, ENTRIES_PER_DRAIN};

/// How many streams the spool spreads over (hash tags `{s0}` … `{s15}`).
pub const STREAMS: u16 = 16;
/// The consumer group every instance drains through.
pub const GROUP: &str = "drain";
/// `CIQ_SPOOL_MAX_ENTRIES`'s default.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;
/// How long an instance's drain counts as alive after its last heartbeat (renewed every
/// second): a killed instance's unacknowledged entries are taken over after this,
/// however recently it read them.
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(3);
/// How long a write waits for a replica's acknowledgement on a cluster.
const REPLICA_WAIT: Duration = Duration::from_secs(1);

/// What [`Spool::write`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Spooled as this entry (`<stream>-<entry id>`).
    Queued(String),
    /// The request's `Idempotency-Key` is spooled with the same body: its queued answer
    /// (the 202's body), to send again.
    Replay(String),
    /// The `Idempotency-Key` is spooled with another body.
    Reused,
    /// The stream is full (`CIQ_SPOOL_MAX_ENTRIES`).
    Full,
}

/// Why a request could not be spooled: it is answered 503 as without a spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Redis did not answer, or refused.
    #[error("the spool's Redis: {0}")]
    Redis(String),
    /// On a cluster, no replica acknowledged the write in time: it was taken back.
    #[error("no replica acknowledged the spooled entry in time")]
    Unreplicated,
}

impl From<RedisError> for SpoolError {
    fn from(err: RedisError) -> Self {
        Self::Redis(err.to_string())
    }
}

impl From<redis::ParsingError> for SpoolError {
    fn from(err: redis::ParsingError) -> Self {
        Self::Redis(err.to_string())
    }
}

/// What a spooled `Idempotency-Key` says about a request that carries it (asked while
/// the spool may hold it: after the store returned, before the drain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Spooled with the same body: its queued answer, to send again.
    Replay(String),
    /// Spooled with another body.
    Reused,
}

/// The spool of one gateway instance (every instance's spool is the same streams).
pub struct Spool {
    link: RedisLink,
    prefix: String,
    per_stream: u64,
    idempotency_ttl: Duration,
    consumer: String,
    accepting: AtomicBool,
    depth: AtomicU64,
    oldest_ms: AtomicU64,
    last_write_ms: AtomicU64,
    last_poll_ms: AtomicU64,
    reachable: AtomicBool,
}

/// The spool's one script: the idempotency record (same body: replay; another:
/// reused), the stream's bound, the entry, the record. KEYS: stream [, key record].
/// ARGV: bound, entry, fingerprint, queued answer, record TTL (seconds).
const WRITE: &str = r"
if #KEYS == 2 then
  local held = redis.call('HMGET', KEYS[2], 'fp', 'answer')
  if held[1] then
    if held[1] == ARGV[3] then return {'replay', held[2]} end
    return {'reused', ''}
  end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], 'drain', '0', 'MKSTREAM')
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return {'full', ''} end
local id = redis.call('XADD', KEYS[1], '*', 'request', ARGV[2])
if #KEYS == 2 then
  redis.call('HSET', KEYS[2], 'fp', ARGV[3], 'answer', ARGV[4], 'entry', id)
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
return {'queued', id}
";

/// Takes back an entry no replica acknowledged. KEYS: stream [, key record]. ARGV: id.
const TAKE_BACK: &str = r"
redis.call('XDEL', KEYS[1], ARGV[1])
if #KEYS == 2 and redis.call('HGET', KEYS[2], 'entry') == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
return 1
";

fn unix_ms() -> u64 {
    u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0)
}

impl Spool {
    /// The spool on `link`, its keys under `prefix` (`<REDIS prefix>spool:`); at most
    /// `max_entries` entries (rounded up to a multiple of [`STREAMS`]: each stream holds
    /// its share); a spooled `Idempotency-Key` is kept at most `idempotency_ttl` (the
    /// store's retention of keys). Off until [`Spool::check_policy`] finds `noeviction`.
    pub fn new(
        link: RedisLink,
        prefix: &str,
        max_entries: u64,
        idempotency_ttl: Duration,
    ) -> Arc<Self> {
        metrics::gauge!("ciq_spool_entries").set(0.0);
        metrics::gauge!("ciq_spool_oldest_seconds").set(0.0);
        Arc::new(Self {
            link,
            prefix: prefix.to_owned(),
            per_stream: max_entries.div_ceil(u64::from(STREAMS)).max(1),
            idempotency_ttl,
            consumer: Uuid::now_v7().simple().to_string(),
            accepting: AtomicBool::new(false),
            depth: AtomicU64::new(0),
            oldest_ms: AtomicU64::new(0),
            last_write_ms: AtomicU64::new(0),
            last_poll_ms: AtomicU64::new(0),
            reachable: AtomicBool::new(true),
        })
    }

    /// Whether requests may be spooled: Redis's eviction policy was last seen to be
    /// `noeviction` on every master.
    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }

    /// Entries waiting, as last counted (every second).
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Acquire)
    }

    /// How long ago the spool was last counted.
    pub(crate) fn since_count(&self) -> Duration {
        Duration::from_millis(unix_ms().saturating_sub(self.last_poll_ms.load(Ordering::Acquire)))
    }

    /// How long the oldest waiting entry has waited, as last seen.
    pub fn oldest_age(&self) -> Option<Duration> {
        match self.oldest_ms.load(Ordering::Acquire) {
            0 => None,
            at => Some(Duration::from_millis(unix_ms().saturating_sub(at))),
        }
    }

    /// Whether the spool may hold entries: it did at the last count, or this instance
    /// spooled since that count began. Only then is a request's `Idempotency-Key` looked
    /// for in it ([`Spool::held`]).
    /// While the last count failed (Redis does not answer) nothing is looked for:
    /// requests are not held up by a Redis that is gone.
    pub fn maybe_pending(&self) -> bool {
        if !self.reachable.load(Ordering::Acquire) {
            return false;
        }
        self.depth() > 0
            || self.last_write_ms.load(Ordering::Acquire)
                >= self.last_poll_ms.load(Ordering::Acquire)
    }

    /// Reads every master's eviction policy; spooling is on only when all are
    /// `noeviction`. Unreadable: unchanged (a Redis that does not answer cannot spool
    /// anyway).
    pub async fn check_policy(&self) {
        let Ok(infos) = self.link.info_of_masters("memory").await else {
            return;
        };
        let safe = !infos.is_empty()
            && infos
                .iter()
                .all(|info| ciq_redis::info_field(info, "maxmemory_policy") == Some("noeviction"));
        if self.accepting.swap(safe, Ordering::AcqRel) != safe {
            if safe {
                tracing::info!("outage spool on: Redis's maxmemory-policy is noeviction");
            } else {
                tracing::warn!(
                    "outage spool off: Redis's maxmemory-policy is not noeviction on every master (an evicting Redis could drop spooled leads); creates answer 503 while the store is down"
                );
            }
        }
    }

    /// The key that says this instance's drain (consumer `consumer`) is alive: set for
    /// [`HEARTBEAT_TTL`] every second, gone within that once the instance dies.
    pub fn heartbeat_key(&self, consumer: &str) -> String {
        format!("{}consumer:{consumer}", self.prefix)
    }

    /// Renews this instance's heartbeat (see [`Spool::heartbeat_key`]).
    pub async fn beat(&self) -> Result<(), SpoolError> {
        let ttl = u64::try_from(HEARTBEAT_TTL.as_millis()).unwrap_or(3_000);
        redis::cmd("SET")
            .arg(self.heartbeat_key(&self.consumer))
            .arg(1)
            .arg("PX")
            .arg(ttl)
            .query_async::<()>(&mut self.link.clone())
            .await?;
        Ok(())
    }

    /// The key of stream `group` (`<prefix>{sN}`).
    pub fn stream_name(&self, group: u16) -> String {
        format!("{}{{s{group}}}", self.prefix)
    }

    fn record(&self, group: u16, user_id: Uuid, key: &str) -> String {
        format!("{}{{s{group}}}:key:{}:{key}", self.prefix, user_id.simple())
    }

    /// The stream a request goes to: by its `Idempotency-Key` (so a retry meets the
    /// record in the same slot), else by its first lead's id.
    fn group_of(request: &SpooledRequest) -> u16 {
        let hash = match &request.remembered {
            Some(remembered) => key_group_hash(request.user_id, &remembered.key),
            None => request
                .rows
                .first()
                .map_or(0, |row| crc32fast::hash(row.id.as_bytes())),
        };
        u16::try_from(hash % u32::from(STREAMS)).unwrap_or(0)
    }

    /// Spools `request`, answered with `queued_answer` (the 202's body, kept with its
    /// `Idempotency-Key` for a retry to replay). Returns once Redis holds it (on a
    /// cluster, once a replica does too).
    pub async fn write(
        &self,
        request: &SpooledRequest,
        queued_answer: &str,
    ) -> Result<Written, SpoolError> {
        let group = Self::group_of(request);
        let stream = self.stream_name(group);
        let record = request
            .remembered
            .as_ref()
            .map(|remembered| self.record(group, request.user_id, &remembered.key));
        let entry = serde_json::to_string(request).map_err(|e| SpoolError::Redis(e.to_string()))?;
        let mut script = redis::cmd("EVAL");
        script
            .arg(WRITE)
            .arg(1 + usize::from(record.is_some()))
            .arg(&stream);
        if let Some(record) = &record {
            script.arg(record);
        }
        script
            .arg(self.per_stream)
            .arg(entry)
            .arg(
                request
                    .remembered
                    .as_ref()
                    .map_or("", |r| r.fingerprint.as_str()),
            )
            .arg(queued_answer)
            .arg(self.idempotency_ttl.as_secs().max(1));
        let mut pipe = redis::pipe();
        pipe.add_command(script);
        let cluster = self.link.mode() == RedisMode::Cluster;
        if cluster {
            pipe.cmd("WAIT")
                .arg(1)
                .arg(u64::try_from(REPLICA_WAIT.as_millis()).unwrap_or(1000));
        }
        let mut link = self.link.clone();
        let answers: Vec<redis::Value> = pipe.query_async(&mut link).await?;
        let (outcome, detail): (String, String) = redis::from_redis_value(
            answers
                .first()
                .cloned()
                .ok_or_else(|| SpoolError::Redis("no answer to the spool's script".into()))?,
        )?;
        let written = match outcome.as_str() {
            "queued" => Written::Queued(format!("{group}-{detail}")),
            "replay" => return Ok(Written::Replay(detail)),
            "reused" => return Ok(Written::Reused),
            "full" => return Ok(Written::Full),
            other => {
                return Err(SpoolError::Redis(format!(
                    "the spool's script answered {other}"
                )));
            }
        };
        if cluster {
            let replicas: i64 = answers
                .get(1)
                .cloned()
                .map(redis::from_redis_value)
                .transpose()?
                .unwrap_or(0);
            if replicas < 1 {
                let mut take_back = redis::cmd("EVAL");
                take_back
                    .arg(TAKE_BACK)
                    .arg(1 + usize::from(record.is_some()))
                    .arg(&stream);
                if let Some(record) = &record {
                    take_back.arg(record);
                }
                take_back.arg(&detail);
                let _: Result<i64, _> = take_back.query_async(&mut link).await;
                return Err(SpoolError::Unreplicated);
            }
        }
        self.last_write_ms.store(unix_ms(), Ordering::Release);
        metrics::counter!("ciq_spool_written_total").increment(request.rows.len() as u64);
        Ok(written)
    }

    /// What the spool holds for `user_id`'s `Idempotency-Key` `key` (`None`: nothing —
    /// never spooled, or drained already, when the store has its answer).
    pub async fn held(
        &self,
        user_id: Uuid,
        key: &str,
        fingerprint: &str,
    ) -> Result<Option<Held>, SpoolError> {
        let group = u16::try_from(key_group_hash(user_id, key) % u32::from(STREAMS)).unwrap_or(0);
        let (held, answer): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.record(group, user_id, key))
            .arg("fp")
            .arg("answer")
            .query_async(&mut self.link.clone())
            .await?;
        Ok(match (held, answer) {
            (Some(held), Some(answer)) if held == fingerprint => Some(Held::Replay(answer)),
            (Some(_), _) => Some(Held::Reused),
            (None, _) => None,
        })
    }

    /// Counts the waiting entries and finds the oldest (one pipeline per stream),
    /// updating [`Spool::depth`], [`Spool::oldest_age`] and the metrics.
    pub async fn count(&self) -> Result<u64, SpoolError> {
        let started = unix_ms();
        let counts = futures_util::future::join_all((0..STREAMS).map(|group| {
            let mut link = self.link.clone();
            let stream = self.stream_name(group);
            async move {
                let (len, first): (u64, Vec<(String, redis::Value)>) = redis::pipe()
                    .cmd("XLEN")
                    .arg(&stream)
                    .cmd("XRANGE")
                    .arg(&stream)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut link)
                    .await?;
                let oldest = first
                    .first()
                    .and_then(|(id, _)| id.split_once('-'))
                    .and_then(|(ms, _)| ms.parse::<u64>().ok());
                Ok::<_, RedisError>((len, oldest))
            }
        }))
        .await;
        let mut depth = 0;
        let mut oldest: Option<u64> = None;
        let counts: Result<Vec<_>, RedisError> = counts.into_iter().collect();
        self.reachable.store(counts.is_ok(), Ordering::Release);
        for (len, first) in counts? {
            depth += len;
            if let Some(first) = first {
                oldest = Some(oldest.map_or(first, |o| o.min(first)));
            }
        }
        self.depth.store(depth, Ordering::Release);
        self.oldest_ms.store(oldest.unwrap_or(0), Ordering::Release);
        self.last_poll_ms.store(started, Ordering::Release);
        metrics::gauge!("ciq_spool_entries").set(depth as f64);
        metrics::gauge!("ciq_spool_oldest_seconds")
            .set(self.oldest_age().map_or(0.0, |age| age.as_secs_f64()));
        Ok(depth)
    }
}

impl ciq_store::Spooling for Spool {
    fn accepting(&self) -> bool {
        Spool::accepting(self)
    }

    fn depth(&self) -> u64 {
        Spool::depth(self)
    }

    fn oldest_age(&self) -> Option<Duration> {
        Spool::oldest_age(self)
    }
}

/// The hash that places a request with an `Idempotency-Key` (its record and its entry).
fn key_group_hash(user_id: Uuid, key: &str) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(user_id.as_bytes());
    hasher.update(key.as_bytes());
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_have_hash_tags_and_a_keys_record_shares_its_streams_tag() {
        let link = RedisLink::open("redis://127.0.0.1:1", Duration::from_millis(10)).unwrap();
        let spool = Spool::new(link, "ciq:spool:", 1_000_000, Duration::from_secs(60));
        assert_eq!(spool.per_stream, 62_500);
        assert_eq!(spool.stream_name(3), "ciq:spool:{s3}");
        let user = Uuid::nil();
        assert_eq!(
            spool.record(3, user, "order-1"),
            "ciq:spool:{s3}:key:00000000000000000000000000000000:order-1"
        );
        // A bound below the stream count still lets each stream hold one.
        let link = RedisLink::open("redis://127.0.0.1:1", Duration::from_millis(10)).unwrap();
        assert_eq!(
            Spool::new(link, "p:", 5, Duration::from_secs(1)).per_stream,
            1
        );
    }
}
