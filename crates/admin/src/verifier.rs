//! The hot-path check of a presented `ciq_` key.
//!
//! Order of checks, cheapest first:
//! 1. format and checksum ([`crate::key::parse`]) — no I/O at all;
//! 2. the in-memory cache by lookup id: a known key is compared by a BLAKE2s digest of
//!    its secret in constant time — no argon2, no database. Because a lookup id has
//!    exactly one secret, a wrong secret for a cached key is refused for free too;
//! 3. on a miss, one indexed read by lookup id and one argon2id verification, on the
//!    argon2 threads (see [`crate::hashing`]), at most one per CPU at a time, coalesced
//!    per lookup id.
//!
//! 4. past an allowance of failures (the client's address, or the key's lookup id: see
//!    ciq-api), no argon2 at all: the row is read and the presented secret compared only
//!    with the digest of the key's last successful verification, which every instance
//!    shares through Redis ([`KeyVerifier::sharing_through`]) with the row's `version`
//!    it was made at. The real key still verifies, on any instance, at no argon2 cost;
//!    anything else is refused unchecked ([`VerifyError::Throttled`]). A digest made
//!    at an older version (the key was revoked or changed since) is ignored, as the
//!    cache evicts such entries. Lookup ids are not secret; the digest is a BLAKE2s of a
//!    190-bit random secret, which no one can invert.
//!
//! Revocations and other key changes reach every instance through
//! [`KeyVerifier::run_change_watcher`], which polls for rows changed since its last
//! look (by `api_keys.updated_at`, on the database's clock, never a writer's) and
//! evicts cached verifications older than the row's `version`. A verification whose
//! row was read before a change and cached after it is caught too: the newest version
//! the watcher saw is compared after every insert. That needs nothing but the database
//! every instance already shares.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use blake2::{Blake2s256, Digest};
use chrono::{DateTime, Utc};
use ciq_store::Db;
use moka::future::Cache;
use sea_orm::prelude::Uuid;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use ciq_entity::api_key;

use crate::SecretHasher;
use crate::key::{self, KeyFormatError, ParsedKey};

/// How long a verified key stays cached even if no change is seen (a safety net;
/// changes are normally evicted within a poll interval).
pub const CACHE_TTL: Duration = Duration::from_secs(600);
/// How far back each poll looks before the previous one began, for changes whose
/// transactions committed late (`updated_at` is stamped when the change is made).
const CHANGE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// The authenticated caller: which key, whose account, what limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    /// The key's id.
    pub key_id: Uuid,
    /// The tenant: every lead created with this key belongs to this user.
    pub user_id: Uuid,
    /// Per-key override of the requests-per-minute limit.
    pub rate_limit_per_minute: Option<u32>,
    /// What the key may do.
    pub scopes: crate::Scopes,
    /// The web origins it may be used from (none: not a browser key).
    pub allowed_origins: crate::AllowedOrigins,
    /// Per-key override of the visitor limit (browser submissions per client address
    /// per minute).
    pub visitor_rate_limit_per_minute: Option<u32>,
    /// The challenge its browser submissions must pass, if any.
    pub challenge: Option<crate::KeyChallenge>,
}

/// Why a presented key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a well-formed `ciq_` key; the database was not consulted.
    #[error("malformed API key: {0}")]
    Malformed(KeyFormatError),
    /// No such key, or the secret does not match.
    #[error("unknown API key")]
    Unknown,
    /// The key was revoked by its owner or an operator.
    #[error("the API key has been revoked")]
    Revoked,
    /// The key's expiry has passed.
    #[error("the API key has expired")]
    Expired,
    /// The key store could not be reached.
    #[error("the key store is unavailable: {0}")]
    Unavailable(String),
    /// Not checked: argon2 was not allowed (an allowance of failures is used up) and
    /// the secret is not the one last verified.
    #[error("the API key was not checked: too many failures")]
    Throttled,
}

#[derive(Debug)]
struct CachedKey {
    key_id: Uuid,
    user_id: Uuid,
    secret_digest: [u8; 32],
    rate_limit_per_minute: Option<u32>,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
    /// The row's `version` when it was read.
    version: i64,
    scopes: crate::Scopes,
    allowed_origins: crate::AllowedOrigins,
    visitor_rate_limit_per_minute: Option<u32>,
    challenge: Option<crate::KeyChallenge>,
}

#[derive(Debug)]
enum LoadError {
    NotFound,
    /// The secret with this digest did not verify.
    Mismatch([u8; 32]),
    Database(String),
}

/// Verifies presented keys against the store, with a cache in front.
pub struct KeyVerifier {
    db: Db,
    breaker: Arc<ciq_store::Breaker>,
    hasher: SecretHasher,
    cache: Cache<String, Arc<CachedKey>>,
    argon2_slots: Semaphore,
    argon2_runs: AtomicU64,
    cache_hits: AtomicU64,
    /// Last use per key since the last flush: one write per key per flush, never one
    /// per request.
    last_used: std::sync::Mutex<HashMap<Uuid, DateTime<Utc>>>,
    /// The newest version the change watcher saw per lookup id (and when it saw it):
    /// a cache entry built from an older one is stale.
    newest: std::sync::Mutex<HashMap<String, (i64, DateTime<Utc>)>>,
    /// Polls the change watcher has completed.
    polls: AtomicU64,
    /// Test seam: a pause between a load's row read and its cache insert.
    load_pause: std::sync::Mutex<Option<LoadPause>>,
    /// Where the digest of each key's last successful verification is shared.
    last_good: Option<LastGood>,
}

/// The digests of keys' last successful verifications in Redis, under
/// `<prefix><lookup id>` as `<version>:<hex digest>`, for a day after the last one.
struct LastGood {
    link: ciq_redis::RedisLink,
    prefix: String,
}

/// How long a shared last-good digest lives after the key's last verification on an
/// instance without it cached.
const LAST_GOOD_TTL_SECS: u64 = 86_400;

impl LastGood {
    async fn get(&self, lookup_id: &str) -> Option<(i64, [u8; 32])> {
        let mut conn = self.link.clone();
        let value: Option<String> = redis::cmd("GET")
            .arg(format!("{}{lookup_id}", self.prefix))
            .query_async(&mut conn)
            .await
            .inspect_err(|err| tracing::debug!(error = %err, "last-good digest unreadable"))
            .ok()?;
        let (version, hex) = value?
            .split_once(':')
            .map(|(v, h)| (v.to_owned(), h.to_owned()))?;
        let mut digest = [0u8; 32];
        for (i, byte) in digest.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some((version.parse().ok()?, digest))
    }

    async fn set(&self, lookup_id: &str, version: i64, digest: &[u8; 32]) {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let mut conn = self.link.clone();
        let stored = redis::cmd("SET")
            .arg(format!("{}{lookup_id}", self.prefix))
            .arg(format!("{version}:{hex}"))
            .arg("EX")
            .arg(LAST_GOOD_TTL_SECS)
            .query_async::<()>(&mut conn)
            .await;
        if let Err(err) = stored {
            tracing::debug!(error = %err, "last-good digest not shared");
        }
    }
}

/// A paused load: [`LoadPause::reached`] fires when a load has read its row, and the
/// load goes on once the [`PauseControl::resume`] side is dropped or fired.
struct LoadPause {
    reached: tokio::sync::oneshot::Sender<()>,
    resume: tokio::sync::oneshot::Receiver<()>,
}

/// The test's side of a pause armed by [`KeyVerifier::pause_next_load`].
pub struct PauseControl {
    /// Fires when the paused load has read its row.
    pub reached: tokio::sync::oneshot::Receiver<()>,
    /// Fire (or drop) to let the load go on to its cache insert.
    pub resume: tokio::sync::oneshot::Sender<()>,
}

impl KeyVerifier {
    /// A verifier over `db`, allowing one concurrent argon2 run per CPU; while
    /// `breaker` is open, uncached keys are refused as unavailable without a try.
    pub fn new(db: Db, breaker: Arc<ciq_store::Breaker>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            db,
            breaker,
            hasher: SecretHasher::default(),
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
            argon2_slots: Semaphore::new(cpus),
            argon2_runs: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            last_used: std::sync::Mutex::default(),
            newest: std::sync::Mutex::default(),
            polls: AtomicU64::new(0),
            load_pause: std::sync::Mutex::default(),
            last_good: None,
        }
    }

    /// Shares the digest of each key's last successful verification through the Redis
    /// at `url` (one node or a cluster's seeds; keys under `prefix`), so that past an
    /// allowance of failures the real key still verifies on any instance without argon2
    /// (see the module documentation). Only a malformed URL is an error; while Redis
    /// does not answer, nothing is shared (the key then needs argon2 as before).
    pub fn sharing_through(mut self, url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        self.last_good = Some(LastGood {
            link: ciq_redis::RedisLink::open(url, Duration::from_millis(500))?,
            prefix: prefix.to_owned(),
        });
        Ok(self)
    }

    /// Test seam: the next load from the store stops between reading the key's row
    /// and caching it, until the returned control resumes it — so a test can change
    /// the key inside that window deterministically.
    #[doc(hidden)]
    pub fn pause_next_load(&self) -> PauseControl {
        let (reached_tx, reached_rx) = tokio::sync::oneshot::channel();
        let (resume_tx, resume_rx) = tokio::sync::oneshot::channel();
        *self
            .load_pause
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(LoadPause {
            reached: reached_tx,
            resume: resume_rx,
        });
        PauseControl {
            reached: reached_rx,
            resume: resume_tx,
        }
    }

    /// How many polls the change watcher has completed (tests wait on it).
    pub fn watcher_polls(&self) -> u64 {
        self.polls.load(Ordering::SeqCst)
    }

    /// Whether the watcher has seen a version of `lookup_id` newer than `version`.
    fn superseded(&self, lookup_id: &str, version: i64) -> bool {
        self.newest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(lookup_id)
            .is_some_and(|(newest, _)| *newest > version)
    }

    /// How many argon2 verifications this verifier has run.
    pub fn argon2_runs(&self) -> u64 {
        self.argon2_runs.load(Ordering::Relaxed)
    }

    /// How many verifications were answered from the cache.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// Checks a presented key; see the module documentation for the order of checks.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn verify(&self, presented: &str) -> Result<VerifiedKey, VerifyError> {
        if let Some(answer) = self.verify_cached(presented).await {
            return answer;
        }
        // Boxed: the miss path (a store read, argon2) is several KB of future state that
        // every request would otherwise carry while it waits, cached or not.
        let verified = Box::pin(self.verify_from_store(presented)).await;
        if let Ok(key) = &verified {
            self.note_use(key.key_id);
        }
        verified
    }

    async fn verify_from_store(&self, presented: &str) -> Result<VerifiedKey, VerifyError> {
        let parsed = key::parse(presented).map_err(VerifyError::Malformed)?;
        let digest = secret_digest(parsed.secret());
        // Concurrent misses for one lookup id share a single load. A load fails for
        // everyone waiting on it when *its* secret is wrong, so a waiter that brought
        // a different secret tries again with its own.
        for _ in 0..3 {
            let loaded = self
                .cache
                .try_get_with(parsed.lookup_id.clone(), self.load(&parsed, digest))
                .await;
            match loaded {
                Ok(cached) if self.superseded(&parsed.lookup_id, cached.version) => {
                    // Read before a change the watcher has already seen, cached after
                    // it: evict and read the row again.
                    self.cache.invalidate(&parsed.lookup_id).await;
                    continue;
                }
                Ok(cached) => return check(&cached, &digest),
                Err(err) => match &*err {
                    LoadError::Mismatch(failed) if *failed != digest => continue,
                    LoadError::Mismatch(_) | LoadError::NotFound => {
                        return Err(VerifyError::Unknown);
                    }
                    LoadError::Database(msg) => return Err(VerifyError::Unavailable(msg.clone())),
                },
            }
        }
        Err(VerifyError::Unknown)
    }

    /// The answer that costs no I/O at all: a malformed key, or a key whose lookup id
    /// is cached (right or wrong secret). `None` means the store must be consulted.
    pub async fn verify_cached(&self, presented: &str) -> Option<Result<VerifiedKey, VerifyError>> {
        let parsed = match key::parse(presented) {
            Ok(parsed) => parsed,
            Err(why) => return Some(Err(VerifyError::Malformed(why))),
        };
        let cached = self.cache.get(&parsed.lookup_id).await?;
        self.cache_hits.fetch_add(1, Ordering::Relaxed);
        let answer = check(&cached, &secret_digest(parsed.secret()));
        if let Ok(key) = &answer {
            self.note_use(key.key_id);
        }
        Some(answer)
    }

    fn note_use(&self, key_id: Uuid) {
        let mut last_used = self
            .last_used
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        last_used.insert(key_id, ciq_entity::now());
    }

    /// Writes the last-use times gathered since the previous flush (one UPDATE per
    /// key used) and returns how many keys were written. It never touches
    /// `updated_at`, so it does not evict cached keys.
    pub async fn flush_last_used(&self) -> Result<usize, sea_orm::DbErr> {
        let pending: Vec<(Uuid, DateTime<Utc>)> = {
            let mut last_used = self
                .last_used
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            last_used.drain().collect()
        };
        for (key_id, at) in &pending {
            ciq_entity::ApiKey::update_many()
                .col_expr(
                    api_key::Column::LastUsedAt,
                    sea_orm::sea_query::Expr::value(*at),
                )
                .filter(api_key::Column::Id.eq(*key_id))
                .filter(
                    sea_orm::Condition::any()
                        .add(api_key::Column::LastUsedAt.is_null())
                        .add(api_key::Column::LastUsedAt.lt(*at)),
                )
                .exec(&self.db)
                .await?;
        }
        Ok(pending.len())
    }

    /// Flushes last-use times every `interval` until the task is dropped.
    pub async fn run_last_used_flusher(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if self.breaker.is_open() {
                continue;
            }
            if let Err(err) = self.flush_last_used().await {
                tracing::warn!(error = %err, "could not record key last-use times; will retry");
            }
        }
    }

    /// The key's row by lookup id, behind the breaker.
    async fn row(&self, lookup_id: &str) -> Result<api_key::Model, LoadError> {
        let row = self
            .breaker
            .guard(
                ciq_entity::ApiKey::find()
                    .filter(api_key::Column::LookupId.eq(lookup_id))
                    .one(&self.db),
            )
            .await
            .map_err(|down| LoadError::Database(down.to_string()))?;
        self.breaker.record(&row);
        row.map_err(|e| LoadError::Database(e.to_string()))?
            .ok_or(LoadError::NotFound)
    }

    /// [`KeyVerifier::verify`] without argon2: a cached key as always; otherwise the
    /// row is read and the secret compared only with the digest of the key's last
    /// successful verification (shared through Redis) at the row's current version. A
    /// match verifies (and caches the key); anything else is [`VerifyError::Throttled`].
    pub async fn verify_without_argon2(&self, presented: &str) -> Result<VerifiedKey, VerifyError> {
        if let Some(answer) = self.verify_cached(presented).await {
            return answer;
        }
        let parsed = key::parse(presented).map_err(VerifyError::Malformed)?;
        let digest = secret_digest(parsed.secret());
        let Some(last_good) = &self.last_good else {
            return Err(VerifyError::Throttled);
        };
        let Some((version, good)) = last_good.get(&parsed.lookup_id).await else {
            return Err(VerifyError::Throttled);
        };
        if !bool::from(good.ct_eq(&digest)) {
            return Err(VerifyError::Throttled);
        }
        let row = match self.row(&parsed.lookup_id).await {
            Ok(row) => row,
            Err(LoadError::Database(msg)) => return Err(VerifyError::Unavailable(msg)),
            Err(_) => return Err(VerifyError::Throttled),
        };
        if row.version != version || self.superseded(&parsed.lookup_id, row.version) {
            return Err(VerifyError::Throttled);
        }
        let cached = Arc::new(cached_key(row, digest));
        self.cache
            .insert(parsed.lookup_id.clone(), cached.clone())
            .await;
        let answer = check(&cached, &digest);
        if let Ok(key) = &answer {
            self.note_use(key.key_id);
        }
        answer
    }

    async fn load(
        &self,
        parsed: &ParsedKey,
        digest: [u8; 32],
    ) -> Result<Arc<CachedKey>, LoadError> {
        let row = self.row(&parsed.lookup_id).await?;
        let pause = self
            .load_pause
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(pause) = pause {
            let _ = pause.reached.send(());
            let _ = pause.resume.await;
        }
        let _slot = self
            .argon2_slots
            .acquire()
            .await
            .expect("the argon2 semaphore is never closed");
        self.argon2_runs.fetch_add(1, Ordering::Relaxed);
        let matches = self
            .hasher
            .verify_async(parsed.secret(), &row.secret_hash)
            .await
            .map_err(|e| LoadError::Database(format!("argon2: {e}")))?;
        if !matches {
            return Err(LoadError::Mismatch(digest));
        }
        if let Some(last_good) = &self.last_good {
            last_good.set(&parsed.lookup_id, row.version, &digest).await;
        }
        Ok(Arc::new(cached_key(row, digest)))
    }

    /// Evicts cached verifications of keys changed in the database (revoked, new
    /// expiry), polling every `interval`, until the task is dropped. Run one per
    /// instance; a change made by any instance or the CLI is seen by all of them.
    ///
    /// Each poll asks for rows changed since the previous poll began (less
    /// [`CHANGE_MARGIN`]), both times on the database's clock, so neither this
    /// instance's clock nor a writer's can hide a change.
    pub async fn run_change_watcher(self: Arc<Self>, interval: Duration) {
        let mut since = None;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if self.breaker.is_open() {
                // Backs off while the store is gone: the probe finds out when it is back.
                continue;
            }
            match self.poll_changes(since).await {
                Ok(began) => since = Some(began),
                Err(err) => {
                    tracing::warn!(error = %err, "could not poll for key changes; will retry");
                    continue;
                }
            }
            self.polls.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// One poll: records and evicts what changed since `since` (everything recent on
    /// the first); returns when, on the database's clock, this poll began.
    async fn poll_changes(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<DateTime<Utc>, sea_orm::DbErr> {
        let began = database_now(&self.db).await?;
        let from = since.unwrap_or(began) - CHANGE_MARGIN;
        let changed: Vec<(String, i64)> = ciq_entity::ApiKey::find()
            .select_only()
            .column(api_key::Column::LookupId)
            .column(api_key::Column::Version)
            .filter(api_key::Column::UpdatedAt.gte(from))
            .into_tuple()
            .all(&self.db)
            .await?;
        for (lookup_id, version) in changed {
            // Record first, then evict: a load that caches an older row after this
            // point sees the newer version in `superseded`.
            let newer = {
                let mut newest = self
                    .newest
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let known = newest.get(&lookup_id).map(|(v, _)| *v);
                if known.is_none_or(|v| v < version) {
                    newest.insert(lookup_id.clone(), (version, began));
                }
                known.is_some_and(|v| v < version) || (known.is_none() && version > 0)
            };
            if newer {
                self.cache.invalidate(&lookup_id).await;
            }
        }
        // What is older than any cache entry can be forgotten.
        let horizon =
            began - chrono::TimeDelta::from_std(CACHE_TTL).unwrap_or_default() - CHANGE_MARGIN;
        self.newest
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|_, (_, seen)| *seen >= horizon);
        Ok(began)
    }
}

/// The database's own clock: PostgreSQL's `CURRENT_TIMESTAMP`; an embedded SQLite
/// store's clock is this machine's.
async fn database_now(db: &Db) -> Result<DateTime<Utc>, sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, Statement};
    if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(Utc::now());
    }
    let row = db
        .query_one_raw(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT CURRENT_TIMESTAMP AS now",
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("SELECT CURRENT_TIMESTAMP returned no row".into()))?;
    row.try_get::<DateTime<Utc>>("", "now")
}

/// What the cache keeps of a verified key's `row`.
fn cached_key(row: api_key::Model, digest: [u8; 32]) -> CachedKey {
    CachedKey {
        key_id: row.id,
        user_id: row.user_id,
        secret_digest: digest,
        rate_limit_per_minute: row
            .rate_limit_per_minute
            .and_then(|l| u32::try_from(l).ok()),
        expires_at: row.expires_at,
        revoked: row.revoked_at.is_some(),
        version: row.version,
        scopes: crate::Scopes::from_stored(&row.scopes),
        allowed_origins: crate::AllowedOrigins::from_stored(&row.allowed_origins),
        visitor_rate_limit_per_minute: row
            .visitor_rate_limit_per_minute
            .and_then(|l| u32::try_from(l).ok()),
        challenge: crate::KeyChallenge::of_row(
            row.challenge_provider.as_deref(),
            row.challenge_secret.as_deref(),
        ),
    }
}

fn secret_digest(secret: &str) -> [u8; 32] {
    Blake2s256::digest(secret.as_bytes()).into()
}

fn check(cached: &CachedKey, digest: &[u8; 32]) -> Result<VerifiedKey, VerifyError> {
    if !bool::from(cached.secret_digest.ct_eq(digest)) {
        return Err(VerifyError::Unknown);
    }
    if cached.revoked {
        return Err(VerifyError::Revoked);
    }
    if cached.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(VerifyError::Expired);
    }
    Ok(VerifiedKey {
        key_id: cached.key_id,
        user_id: cached.user_id,
        rate_limit_per_minute: cached.rate_limit_per_minute,
        scopes: cached.scopes,
        allowed_origins: cached.allowed_origins.clone(),
        visitor_rate_limit_per_minute: cached.visitor_rate_limit_per_minute,
        challenge: cached.challenge.clone(),
    })
}
