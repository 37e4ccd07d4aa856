//! A few PostgreSQL connections kept out of sqlx's pool between statements, so a
//! statement outside a transaction costs one round trip and not two.
//!
//! sqlx 0.9 pings every connection as it is given back to its pool (a `Sync` and its
//! `ReadyForQuery`, unconditionally: `return_to_pool`), so each statement sent on the
//! pool paid a second round trip after it — a `sendto` and a wake-up of PostgreSQL on
//! both sides, per list page or lookup (strace, 2026-12-06). That ping is what makes a
//! connection safe to reuse after a statement was *abandoned* (a request cancelled
//! mid-query leaves unread replies behind) and what discards a broken one.
//!
//! A statement that ran to its end, successfully, leaves nothing behind: [`Kept`] takes
//! its connection back as it is, for the next statement, and only such a connection. A
//! statement that failed or was cancelled drops its connection into sqlx's pool, whose
//! ping drains or discards it as before. A kept connection is trusted for as long as the
//! pool's checkout check trusts a connection ([`Kept::TRUSTED_FOR`] idle, which
//! `ciq_gateway::database::PING_AFTER_IDLE` is); one idle longer is given back to
//! the pool (its ping and its checkout check decide), and every kept connection goes back
//! through the pool at least every [`Kept::RETURNED_EVERY`], so the pool's own rules
//! (its maximum lifetime, its closing) still reach it. A task sweeps the stash every
//! [`Kept::TRUSTED_FOR`]: a gateway with nothing to do keeps no connection.
//!
//! At most [`Kept::most`] connections are kept (a quarter of the pool, 2 to 8): the rest of
//! the pool stays for transactions and group commit. Kept connections count as the
//! pool's idle ones in the operator's metrics.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;

/// The stash of kept connections of one pool (see the module docs).
#[derive(Debug)]
pub struct Kept {
    stash: Mutex<Vec<Stashed>>,
    most: usize,
    /// Whether the sweeping task runs (started with the first kept connection).
    sweeping: AtomicBool,
}

#[derive(Debug)]
struct Stashed {
    conn: PoolConnection<Postgres>,
    /// When the connection was taken from the pool (not from the stash).
    from_pool: Instant,
    /// When its last statement ended.
    since: Instant,
}

/// A connection for one statement: from the stash when one is there and still trusted,
/// else from the pool. [`Taken::keep`] after the statement ran to its end; dropped
/// otherwise, it goes back to sqlx's pool (pinged there).
pub struct Taken<'a> {
    conn: Option<PoolConnection<Postgres>>,
    from_pool: Instant,
    kept: &'a Arc<Kept>,
}

impl Kept {
    /// How long a connection may sit in the stash and still be used without a check.
    pub const TRUSTED_FOR: Duration = Duration::from_secs(1);

    /// How long a connection may go from stash to stash before it goes back through
    /// the pool once.
    pub const RETURNED_EVERY: Duration = Duration::from_secs(60);

    /// A stash for a pool of `pool_max` connections: a quarter of them, 2 to 8 (none for
    /// a pool of fewer than 4).
    pub fn for_pool(pool_max: u32) -> Self {
        let most = if pool_max < 4 {
            0
        } else {
            (pool_max as usize / 4).clamp(2, 8)
        };
        Self {
            stash: Mutex::new(Vec::with_capacity(most)),
            most,
            sweeping: AtomicBool::new(false),
        }
    }

    /// The most connections kept at once.
    pub fn most(&self) -> usize {
        self.most
    }

    /// How many connections are kept now.
    pub fn len(&self) -> usize {
        self.stash.lock().map_or(0, |s| s.len())
    }

    /// Whether no connection is kept now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A connection from the stash (the most recently used one still trusted; those
    /// idle too long are given back to the pool), or else one acquired from `pool`.
    pub async fn take<'a>(
        self: &'a Arc<Self>,
        pool: &sqlx::PgPool,
    ) -> Result<Taken<'a>, sqlx::Error> {
        if let Some(stashed) = self.pop() {
            return Ok(Taken {
                conn: Some(stashed.conn),
                from_pool: stashed.from_pool,
                kept: self,
            });
        }
        let conn = pool.acquire().await?;
        Ok(Taken {
            conn: Some(conn),
            from_pool: Instant::now(),
            kept: self,
        })
    }

    /// The newest stashed connection still trusted; the stale ones are dropped into
    /// the pool.
    fn pop(&self) -> Option<Stashed> {
        let (found, stale) = {
            let mut stash = self.stash.lock().ok()?;
            let stale = stale_of(&mut stash, Instant::now());
            (stash.pop(), stale)
        };
        // Outside the lock: sqlx spawns each one's return.
        drop(stale);
        found
    }

    /// Gives the connections idle past [`Kept::TRUSTED_FOR`] back to the pool, every
    /// [`Kept::TRUSTED_FOR`], for as long as the stash exists.
    async fn sweep(kept: Weak<Self>) {
        // Should the runtime drop this task, the next kept connection starts another.
        struct Running(Weak<Kept>);
        impl Drop for Running {
            fn drop(&mut self) {
                if let Some(kept) = self.0.upgrade() {
                    kept.sweeping.store(false, Ordering::Relaxed);
                }
            }
        }
        let _running = Running(kept.clone());
        let mut every = tokio::time::interval(Self::TRUSTED_FOR);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(kept) = kept.upgrade() else {
                return;
            };
            let stale = kept
                .stash
                .lock()
                .map(|mut stash| stale_of(&mut stash, Instant::now()))
                .unwrap_or_default();
            drop(stale);
        }
    }

    /// Gives every kept connection back to the pool (before the pool is closed: a
    /// pool waits for its checked-out connections).
    pub fn release_all(&self) {
        let all = self
            .stash
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        drop(all);
    }
}

impl Taken<'_> {
    /// The connection, to run one statement (or one transaction) on.
    pub fn conn(&mut self) -> &mut sqlx::PgConnection {
        self.conn
            .as_deref_mut()
            .expect("a taken connection is there until it is kept or dropped")
    }

    /// The statement ran to its end and succeeded: the connection is stashed for the
    /// next one (or, when the stash is full or the connection is due back, given back
    /// to the pool).
    pub fn keep(mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let now = Instant::now();
        if now.duration_since(self.from_pool) > Kept::RETURNED_EVERY {
            return drop(conn);
        }
        let overflow = match self.kept.stash.lock() {
            Ok(mut stash) if stash.len() < self.kept.most => {
                stash.push(Stashed {
                    conn,
                    from_pool: self.from_pool,
                    since: now,
                });
                None
            }
            _ => Some(conn),
        };
        drop(overflow);
        if !self.kept.sweeping.swap(true, Ordering::Relaxed) {
            tokio::spawn(Kept::sweep(Arc::downgrade(self.kept)));
        }
    }
}

/// Takes the connections of `stash` idle past [`Kept::TRUSTED_FOR`] at `now` out of it.
fn stale_of(stash: &mut Vec<Stashed>, now: Instant) -> Vec<Stashed> {
    if !stash
        .iter()
        .any(|s| now.duration_since(s.since) > Kept::TRUSTED_FOR)
    {
        return Vec::new();
    }
    let (stale, fresh) = std::mem::take(stash)
        .into_iter()
        .partition(|s| now.duration_since(s.since) > Kept::TRUSTED_FOR);
    *stash = fresh;
    stale
}

#[cfg(test)]
mod tests {
    use super::Kept;

    #[test]
    fn a_quarter_of_the_pool_is_kept_two_to_eight_and_none_of_a_tiny_pool() {
        let most = |pool| Kept::for_pool(pool).most();
        assert_eq!([0, 1, 3].map(most), [0, 0, 0]);
        assert_eq!([4, 8, 16, 32, 33, 100].map(most), [2, 2, 4, 8, 8, 8]);
        assert!(Kept::for_pool(32).is_empty());
    }
}
