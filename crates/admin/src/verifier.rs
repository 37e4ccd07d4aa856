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
//! Revocations and other key changes reach every instance through
//! [`KeyVerifier::run_change_watcher`], which polls `api_keys.updated_at` and evicts
//! what changed. That needs nothing but the database every instance already shares.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use blake2::{Blake2s256, Digest};
use chrono::{DateTime, Utc};
use moka::future::Cache;
use sea_orm::prelude::Uuid;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use ciq_entity::api_key;

use crate::SecretHasher;
use crate::key::{self, KeyFormatError, ParsedKey};

/// How long a verified key stays cached even if no change is seen (a safety net;
/// changes are normally evicted within a poll interval).
pub const CACHE_TTL: Duration = Duration::from_secs(600);
/// How far back each poll looks beyond the newest change seen, to tolerate clock
/// skew between the instances that write `updated_at`.
const CHANGE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// The authenticated caller: which key, whose account, what limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedKey {
    /// The key's id.
    pub key_id: Uuid,
    /// The tenant: every lead created with this key belongs to this user.
    pub user_id: Uuid,
    /// Per-key override of the requests-per-minute limit.
    pub rate_limit_per_minute: Option<u32>,
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
}

#[derive(Debug)]
struct CachedKey {
    key_id: Uuid,
    user_id: Uuid,
    secret_digest: [u8; 32],
    rate_limit_per_minute: Option<u32>,
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
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
    db: DatabaseConnection,
    hasher: SecretHasher,
    cache: Cache<String, Arc<CachedKey>>,
    argon2_slots: Semaphore,
    argon2_runs: AtomicU64,
    cache_hits: AtomicU64,
    /// Last use per key since the last flush: one write per key per flush, never one
    /// per request.
    last_used: std::sync::Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

impl KeyVerifier {
    /// A verifier over `db`, allowing one concurrent argon2 run per CPU.
    pub fn new(db: DatabaseConnection) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            db,
            hasher: SecretHasher::default(),
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
            argon2_slots: Semaphore::new(cpus),
            argon2_runs: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            last_used: std::sync::Mutex::default(),
        }
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
        let verified = self.verify_from_store(presented).await;
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
            if let Err(err) = self.flush_last_used().await {
                tracing::warn!(error = %err, "could not record key last-use times; will retry");
            }
        }
    }

    async fn load(
        &self,
        parsed: &ParsedKey,
        digest: [u8; 32],
    ) -> Result<Arc<CachedKey>, LoadError> {
        let row = ciq_entity::ApiKey::find()
            .filter(api_key::Column::LookupId.eq(parsed.lookup_id.as_str()))
            .one(&self.db)
            .await
            .map_err(|e| LoadError::Database(e.to_string()))?
            .ok_or(LoadError::NotFound)?;
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
        Ok(Arc::new(CachedKey {
            key_id: row.id,
            user_id: row.user_id,
            secret_digest: digest,
            rate_limit_per_minute: row
                .rate_limit_per_minute
                .and_then(|l| u32::try_from(l).ok()),
            expires_at: row.expires_at,
            revoked: row.revoked_at.is_some(),
        }))
    }

    /// Evicts cached verifications of keys changed in the database (revoked, new
    /// expiry), polling every `interval`, until the task is dropped. Run one per
    /// instance; a change made by any instance or the CLI is seen by all of them.
    pub async fn run_change_watcher(self: Arc<Self>, interval: Duration) {
        let mut watermark = ciq_entity::now();
        let mut seen: HashMap<String, DateTime<Utc>> = HashMap::new();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let changed: Vec<(String, DateTime<Utc>)> = match ciq_entity::ApiKey::find()
                .select_only()
                .column(api_key::Column::LookupId)
                .column(api_key::Column::UpdatedAt)
                .filter(api_key::Column::UpdatedAt.gte(watermark - CHANGE_MARGIN))
                .into_tuple()
                .all(&self.db)
                .await
            {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!(error = %err, "could not poll for key changes; will retry");
                    continue;
                }
            };
            for (lookup_id, updated_at) in changed {
                if seen.get(&lookup_id) != Some(&updated_at) {
                    self.cache.invalidate(&lookup_id).await;
                    seen.insert(lookup_id, updated_at);
                }
                watermark = watermark.max(updated_at);
            }
            seen.retain(|_, at| *at >= watermark - CHANGE_MARGIN);
        }
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
    })
}
