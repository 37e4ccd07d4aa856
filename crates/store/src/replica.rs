//! Reads that may be a little stale, on a PostgreSQL streaming replica when one is
//! configured (`DATABASE_READ_URL`), on the primary otherwise.
//!
//! A checker asks the replica every [`CHECK_INTERVAL`] how far behind it is. Reads go
//! there only while it answers, streams from the primary, and is behind by at most the
//! configured bound; otherwise, and for half a second after any read on it failed,
//! they go to the primary. So a list is never staler than the bound plus one check
//! interval, and a replica that is down or behind costs nothing but the primary's load.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::Db;
use sea_orm::{ConnectionTrait, DbErr, Statement};

/// How often the replica's lag is measured.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Longest a read may take on the replica before it is asked of the primary instead.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Default largest lag at which the replica still serves reads.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(2);

/// The replica's lag: 0 when it has replayed all it received; otherwise the age of the
/// last transaction it replayed. Not streaming (its link to the primary is down) is
/// reported as `NULL`: its data may be arbitrarily old.
const LAG_SQL: &str = "SELECT CASE \
    WHEN NOT pg_is_in_recovery() THEN 0.0::float8 \
    WHEN NOT EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN NULL \
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0::float8 \
    ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 END AS lag";

/// What the replica is fit for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaState {
    /// No replica configured: reads go to the primary.
    NotConfigured,
    /// Answering and within the lag bound: reads go to it.
    Ok,
    /// Answering but further behind than the bound (or not streaming): reads go to the
    /// primary until it catches up.
    Lagging,
    /// Not answering (or a read on it just failed): reads go to the primary.
    Unreachable,
}

impl ReplicaState {
    /// As readiness writes it: `not_configured`, `ok`, `lagging`, `unreachable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::Ok => "ok",
            Self::Lagging => "lagging",
            Self::Unreachable => "unreachable",
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::NotConfigured => 0,
            Self::Ok => 1,
            Self::Lagging => 2,
            Self::Unreachable => 3,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            1 => Self::Ok,
            2 => Self::Lagging,
            3 => Self::Unreachable,
            _ => Self::NotConfigured,
        }
    }
}

struct Replica {
    db: Db,
    max_lag: Duration,
    state: AtomicU8,
}

/// Where reads go: the primary, and a replica while it is fit (see the module docs).
/// Cheap to clone. Writes, key verification and reads that must see the caller's own
/// writes take [`Reads::primary`]; lists take [`Reads::read`].
#[derive(Clone)]
pub struct Reads {
    primary: Db,
    replica: Option<Arc<Replica>>,
}

impl Reads {
    /// Every read on `primary`.
    pub fn primary_only(primary: Db) -> Self {
        Self {
            primary,
            replica: None,
        }
    }

    /// Reads on `replica` while it is at most `max_lag` behind, else on `primary`.
    /// Starts the checker (it ends when the last clone is dropped); the replica counts
    /// as unreachable until the first check says otherwise.
    pub fn with_replica(primary: Db, replica: Db, max_lag: Duration) -> Self {
        let replica = Arc::new(Replica {
            db: replica,
            max_lag,
            state: AtomicU8::new(ReplicaState::Unreachable.code()),
        });
        tokio::spawn(check_until_dropped(Arc::downgrade(&replica)));
        Self {
            primary,
            replica: Some(replica),
        }
    }

    /// How long after a write its writer's lists should still come from the primary:
    /// the lag bound and one check, in whole seconds (`None` without a replica).
    pub fn fresh_for(&self) -> Option<Duration> {
        let replica = self.replica.as_ref()?;
        Some(Duration::from_secs(
            (replica.max_lag + CHECK_INTERVAL).as_secs_f64().ceil() as u64,
        ))
    }

    /// The primary: for writes and for reads that must see their own writes.
    pub fn primary(&self) -> &Db {
        &self.primary
    }

    /// What the replica is fit for now.
    pub fn replica_state(&self) -> ReplicaState {
        self.replica
            .as_ref()
            .map_or(ReplicaState::NotConfigured, |r| {
                ReplicaState::from_code(r.state.load(Ordering::Acquire))
            })
    }

    /// Runs the read `op` on the replica while it is fit, else on the primary. A read
    /// that fails or outlives [`READ_TIMEOUT`] on the replica is run on the primary,
    /// and the replica is left alone until the next check.
    /// `op` gets a handle on the chosen store (a cheap clone of its pool).
    pub async fn read<T, E, F, Fut>(&self, op: F) -> Result<T, E>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(replica) = &self.replica
            && self.replica_state() == ReplicaState::Ok
        {
            match tokio::time::timeout(READ_TIMEOUT, op(replica.db.clone())).await {
                Ok(Ok(found)) => {
                    metrics::counter!("ciq_db_reads_total", "on" => "replica").increment(1);
                    return Ok(found);
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!("a read on the read replica failed; reading from the primary");
                    replica.set(ReplicaState::Unreachable);
                }
            }
        }
        metrics::counter!("ciq_db_reads_total", "on" => "primary").increment(1);
        op(self.primary.clone()).await
    }

    /// [`Reads::read`] for one row that may have just been written: what the replica
    /// does not have yet (`Ok(None)`) is asked of the primary, so a create followed by a
    /// read never answers "not found".
    pub async fn read_fresh_one<T, E, F, Fut>(&self, op: F) -> Result<Option<T>, E>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        match self.read(&op).await? {
            Some(found) => Ok(Some(found)),
            None if self.replica.is_some() => op(self.primary.clone()).await,
            None => Ok(None),
        }
    }
}

impl Replica {
    fn set(&self, state: ReplicaState) {
        let before = ReplicaState::from_code(self.state.swap(state.code(), Ordering::AcqRel));
        if before != state {
            match state {
                ReplicaState::Ok => tracing::info!("read replica in use"),
                other => tracing::warn!(
                    state = other.as_str(),
                    "read replica not in use: reading from the primary"
                ),
            }
        }
    }

    /// Measures the lag once and sets the state from it.
    async fn check(&self) {
        let statement = Statement::from_string(self.db.get_database_backend(), LAG_SQL);
        let answer = tokio::time::timeout(CHECK_INTERVAL, self.db.query_one_raw(statement)).await;
        let lag = match answer {
            Ok(Ok(Some(row))) => row.try_get::<Option<f64>>("", "lag"),
            Ok(Ok(None)) => Ok(None),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(DbErr::Custom("the replica did not answer in time".into())),
        };
        match lag {
            Ok(Some(seconds)) => {
                let lag = Duration::from_secs_f64(seconds.max(0.0));
                metrics::gauge!("ciq_db_replica_lag_seconds").set(lag.as_secs_f64());
                self.set(if lag <= self.max_lag {
                    ReplicaState::Ok
                } else {
                    ReplicaState::Lagging
                });
            }
            Ok(None) => self.set(ReplicaState::Lagging),
            Err(_) => self.set(ReplicaState::Unreachable),
        }
    }
}

async fn check_until_dropped(replica: Weak<Replica>) {
    loop {
        let Some(replica) = replica.upgrade() else {
            return;
        };
        replica.check().await;
        drop(replica);
        tokio::time::sleep(CHECK_INTERVAL).await;
    }
}
