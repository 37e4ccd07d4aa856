//! Draining the spool into the store once it answers again.

use std::sync::Arc;
use std::time::Duration;

use ciq_leads::spooled::{self, Applied, SpooledRequest};
use ciq_store::{Breaker, Db};
use futures_util::StreamExt;
use redis::Value;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use sea_orm::{ConnectionTrait, DbBackend};

use crate::{GROUP, STREAMS, Spool, SpoolError};

/// Entries one drain reads and applies in one transaction (each a create, or a batch of
/// up to 100 leads).
pub const ENTRIES_PER_DRAIN: usize = 100;
/// How long an entry may sit with a consumer before another takes it over (the first
/// one died, or lost its store, between reading and acknowledging).
const CLAIM_IDLE: Duration = Duration::from_secs(15);
/// The idle time given to entries a drain could not store, so that any consumer takes
/// them over at once (far above any claim threshold).
const HANDED_BACK_IDLE: Duration = Duration::from_secs(24 * 3600);
/// How often the spool is counted, and its eviction policy read (every tenth count).
const POLL: Duration = Duration::from_secs(1);
/// Streams drained at once on PostgreSQL: each applies its batches in transactions of
/// its own, whose commits share the store's WAL flushes. SQLite has one writer: its
/// streams drain one after another.
pub const PARALLEL_STREAMS: usize = 4;

/// One instance's drain: counts the spool every second and, while the store answers
/// and the spool holds entries, stores them.
pub struct Drainer {
    spool: Arc<Spool>,
    db: Db,
    breaker: Arc<Breaker>,
    usage: Arc<ciq_usage::Recorder>,
    claim_idle: Duration,
}

/// One entry read from a stream.
struct Read {
    id: String,
    request: Option<SpooledRequest>,
    raw: Option<String>,
}

impl Drainer {
    /// The drain of `spool` into `db`, behind the instance's `breaker`; the leads it
    /// stores are counted in `usage` (for the key that sent them).
    pub fn new(
        spool: Arc<Spool>,
        db: Db,
        breaker: Arc<Breaker>,
        usage: Arc<ciq_usage::Recorder>,
    ) -> Self {
        Self {
            spool,
            db,
            breaker,
            usage,
            claim_idle: CLAIM_IDLE,
        }
    }

    /// Takes over another consumer's entries once they sat unacknowledged `idle`
    /// (default 15 s; tests shorten it).
    pub fn claiming_after(mut self, idle: Duration) -> Self {
        self.claim_idle = idle;
        self
    }

    /// Runs until the task is dropped.
    pub async fn run(self) {
        let mut ticks: u64 = 0;
        loop {
            if ticks.is_multiple_of(10) {
                self.spool.check_policy().await;
            }
            ticks += 1;
            if let Some(depth) = self.recount().await
                && depth > 0
                && !self.breaker.is_open()
            {
                if let Err(err) = self.drain_all().await {
                    tracing::warn!(error = %err, "the spool's drain stopped; will retry");
                }
                continue;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Drains every stream until each is empty, or its batch fails (the store, Redis,
    /// an entry the store refuses): one stream's failure does not hold the others back.
    /// On PostgreSQL [`PARALLEL_STREAMS`] streams drain at once. The leads stored, or
    /// the last failure when a stream could not be drained.
    pub async fn drain_all(&self) -> Result<u64, SpoolError> {
        let parallel = match self.db.get_database_backend() {
            DbBackend::Postgres => PARALLEL_STREAMS,
            _ => 1,
        };
        let drained: Vec<Result<u64, SpoolError>> = futures_util::stream::iter(0..STREAMS)
            .map(|group| self.drain_stream(group))
            .buffer_unordered(parallel)
            .collect()
            .await;
        self.recount().await;
        let mut stored = 0;
        let mut failed = None;
        for outcome in drained {
            match outcome {
                Ok(applied) => stored += applied,
                Err(err) => failed = Some(err),
            }
        }
        match failed {
            Some(err) => Err(err),
            None => Ok(stored),
        }
    }

    /// Stream `group`'s batches until it is empty, one fails, or the breaker opens; every
    /// second meanwhile (and once the drain ends) the heartbeat is renewed and the spool
    /// counted, so readiness and the depth gauge follow the drain.
    async fn drain_stream(&self, group: u16) -> Result<u64, SpoolError> {
        let mut stored = 0;
        while !self.breaker.is_open() {
            let (applied, more) = self.drain_once(group).await?;
            stored += applied;
            if self.spool.since_count() >= POLL {
                self.recount().await;
            }
            if !more {
                break;
            }
        }
        Ok(stored)
    }

    /// What a drain does every second besides storing: renews its heartbeat (a drain
    /// longer than the heartbeat's 3 s must not look dead to the other instances) and
    /// counts the spool (readiness and the depth gauge); failures are logged. The depth,
    /// or `None` when Redis could not count it (the last count is then stale: the idle
    /// loop must not drain on it, or it would spin on a Redis that is down).
    async fn recount(&self) -> Option<u64> {
        if let Err(err) = self.spool.beat().await {
            tracing::debug!(error = %err, "could not renew the drain's heartbeat");
        }
        match self.spool.count().await {
            Ok(depth) => Some(depth),
            Err(err) => {
                tracing::debug!(error = %err, "could not count the spool");
                None
            }
        }
    }

    /// One batch of stream `group`: this consumer's unacknowledged entries first, then
    /// a dead consumer's, then new ones. Returns the leads stored and whether the
    /// stream had entries to read.
    async fn drain_once(&self, group: u16) -> Result<(u64, bool), SpoolError> {
        let stream = self.spool.stream_name(group);
        let mut link = self.spool.link.clone();
        let mut entries = self.read(&stream, "0").await?;
        if entries.is_empty() {
            entries = self.claim_from_the_dead(&stream).await?;
        }
        if entries.is_empty() {
            let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&stream)
                .arg(GROUP)
                .arg(&self.spool.consumer)
                .arg(u64::try_from(self.claim_idle.as_millis()).unwrap_or(15_000))
                .arg("0-0")
                .arg("COUNT")
                .arg(ENTRIES_PER_DRAIN)
                .query_async(&mut link)
                .await
                .or_else(no_group_is_empty)?;
            entries = claimed.claimed.iter().map(read_entry).collect();
            if !claimed.deleted_ids.is_empty() {
                redis::cmd("XACK")
                    .arg(&stream)
                    .arg(GROUP)
                    .arg(&claimed.deleted_ids)
                    .query_async::<i64>(&mut link)
                    .await?;
            }
        }
        if entries.is_empty() {
            entries = self.read(&stream, ">").await?;
        }
        if entries.is_empty() {
            return Ok((0, false));
        }
        // Entries deleted meanwhile (taken back) and entries that cannot be read are
        // acknowledged; an unreadable one is kept aside, never dropped.
        let mut named = Vec::with_capacity(entries.len());
        let mut finished = Vec::with_capacity(entries.len());
        for entry in entries {
            match (entry.request, entry.raw) {
                (Some(request), _) => {
                    named.push((format!("{group}-{}", entry.id), request, entry.id))
                }
                (None, raw) => {
                    if let Some(raw) = raw {
                        tracing::error!(entry = %entry.id, "a spooled entry cannot be read: kept in the spool's unreadable stream");
                        metrics::counter!("ciq_spool_unreadable_total").increment(1);
                        redis::cmd("XADD")
                            .arg(format!("{stream}:unreadable"))
                            .arg("*")
                            .arg("request")
                            .arg(raw)
                            .query_async::<String>(&mut link)
                            .await?;
                    }
                    finished.push(entry.id);
                }
            }
        }
        let mut stored = 0;
        let mut records = Vec::new();
        if !named.is_empty() {
            let batch: Vec<(String, SpooledRequest)> = named
                .iter()
                .map(|(name, request, _)| (name.clone(), request.clone()))
                .collect();
            let applied = match self.breaker.guard(spooled::apply(&self.db, &batch)).await {
                Ok(applied) => {
                    self.breaker.record(&applied);
                    applied.map_err(|err| SpoolError::Redis(format!("not drained: {err}")))
                }
                Err(down) => Err(SpoolError::Redis(format!("not drained: {down}"))),
            };
            let applied = match applied {
                Ok(applied) => applied,
                Err(err) => {
                    // Handed back: marked long idle, so whichever instance drains next
                    // (this one may not live to) claims them at once.
                    let ids: Vec<&String> = named.iter().map(|(_, _, id)| id).collect();
                    let _: Result<Value, _> = redis::cmd("XCLAIM")
                        .arg(&stream)
                        .arg(GROUP)
                        .arg(&self.spool.consumer)
                        .arg(0)
                        .arg(&ids)
                        .arg("IDLE")
                        .arg(u64::try_from(HANDED_BACK_IDLE.as_millis()).unwrap_or(u64::MAX))
                        .arg("JUSTID")
                        .query_async(&mut link)
                        .await;
                    return Err(err);
                }
            };
            let now = chrono::Utc::now();
            for ((_, request, id), outcome) in named.iter().zip(applied) {
                if let Applied::Stored(leads) = &outcome {
                    stored += leads.len() as u64;
                    if let Some(key_id) = request.rows.first().and_then(|row| row.api_key_id) {
                        let spam = leads.iter().filter(|lead| lead.spam.is_some()).count();
                        self.usage.leads(
                            ciq_usage::KeyRef {
                                key_id,
                                user_id: request.user_id,
                            },
                            now,
                            leads.len() as u64,
                            spam as u64,
                        );
                    }
                }
                if let Some(remembered) = &request.remembered {
                    records.push(self.spool.record(group, request.user_id, &remembered.key));
                }
                finished.push(id.clone());
            }
            metrics::counter!("ciq_spool_drained_total").increment(stored);
        }
        // The store holds the answers now: the records go first, then the entries.
        let mut pipe = redis::pipe();
        if !records.is_empty() {
            pipe.cmd("DEL").arg(&records).ignore();
        }
        pipe.cmd("XACK")
            .arg(&stream)
            .arg(GROUP)
            .arg(&finished)
            .ignore()
            .cmd("XDEL")
            .arg(&stream)
            .arg(&finished)
            .ignore();
        pipe.query_async::<()>(&mut link).await?;
        Ok((stored, true))
    }

    /// Up to [`ENTRIES_PER_DRAIN`] unacknowledged entries of a consumer whose heartbeat is gone (its
    /// instance died between reading and acknowledging them), taken over now rather
    /// than when they have sat idle for the claim threshold. Entries idle for less than
    /// a second stay where they are, so two live drains do not take them from each
    /// other.
    async fn claim_from_the_dead(&self, stream: &str) -> Result<Vec<Read>, SpoolError> {
        let mut link = self.spool.link.clone();
        let summary: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
            .arg(stream)
            .arg(GROUP)
            .query_async(&mut link)
            .await
            .or_else(no_group_is_empty)?;
        let redis::streams::StreamPendingReply::Data(summary) = summary else {
            return Ok(Vec::new());
        };
        for holder in summary.consumers {
            if holder.name == self.spool.consumer || holder.pending == 0 {
                continue;
            }
            let alive: bool = redis::cmd("EXISTS")
                .arg(self.spool.heartbeat_key(&holder.name))
                .query_async(&mut link)
                .await?;
            if alive {
                continue;
            }
            let held: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(stream)
                .arg(GROUP)
                .arg("-")
                .arg("+")
                .arg(ENTRIES_PER_DRAIN)
                .arg(&holder.name)
                .query_async(&mut link)
                .await?;
            let ids: Vec<&String> = held.ids.iter().map(|pending| &pending.id).collect();
            if ids.is_empty() {
                continue;
            }
            let claimed: redis::streams::StreamClaimReply = redis::cmd("XCLAIM")
                .arg(stream)
                .arg(GROUP)
                .arg(&self.spool.consumer)
                .arg(1_000)
                .arg(&ids)
                .query_async(&mut link)
                .await?;
            if !claimed.ids.is_empty() {
                tracing::info!(
                    entries = claimed.ids.len(),
                    "took over the spool entries of an instance that stopped"
                );
                return Ok(claimed.ids.iter().map(read_entry).collect());
            }
        }
        Ok(Vec::new())
    }

    /// Up to [`ENTRIES_PER_DRAIN`] entries of `stream` for this consumer from `from` (`0`: those it
    /// holds unacknowledged; `>`: new ones).
    async fn read(&self, stream: &str, from: &str) -> Result<Vec<Read>, SpoolError> {
        let reply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.spool.consumer)
            .arg("COUNT")
            .arg(ENTRIES_PER_DRAIN)
            .arg("STREAMS")
            .arg(stream)
            .arg(from)
            .query_async::<Option<StreamReadReply>>(&mut self.spool.link.clone())
            .await
            .or_else(no_group_is_empty)?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .map(|entry| read_entry(&entry))
            .collect())
    }
}

/// A stream that was never written has no group yet: nothing to read.
fn no_group_is_empty<T: Default>(err: redis::RedisError) -> Result<T, redis::RedisError> {
    if err.to_string().contains("NOGROUP") {
        Ok(T::default())
    } else {
        Err(err)
    }
}

fn read_entry(entry: &StreamId) -> Read {
    let raw = match entry.map.get("request") {
        Some(Value::BulkString(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Some(Value::SimpleString(text)) => Some(text.clone()),
        _ => None,
    };
    Read {
        id: entry.id.clone(),
        request: raw
            .as_deref()
            .and_then(|raw| serde_json::from_str(raw).ok()),
        raw,
    }
}
