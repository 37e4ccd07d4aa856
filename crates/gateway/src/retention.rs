//! The retention purge: what the gateway keeps only for a while is deleted once its
//! time is up — remembered idempotent answers (which hold lead data) after the
//! idempotency retention, database sessions and password links once expired, CSV imports (and the
//! failed rows they list) 30 days after they finished, the webhook delivery log (its
//! payloads hold lead data) after 7 days, spam leads 30 days after they were judged so,
//! usage buckets after 90 days (minute buckets rolled up into hours after 48 h) and the
//! request log after 7 days; and the webhook endpoints an expired key subscribed are
//! disabled. Every instance runs it; the
//! deletes are idempotent, so instances need no coordination.

use std::time::Duration;

use ciq_store::Db;

/// How long things are kept, and how often the purge looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `Idempotency-Key`s and their answers.
    pub idempotency: Duration,
    /// Time between two purges.
    pub purge_every: Duration,
    /// The webhook delivery log (finished deliveries; their payloads hold lead data).
    pub deliveries: Duration,
    /// Leads quarantined as spam, from when they were judged spam.
    pub spam: Duration,
    /// Usage buckets (`CIQ_RETENTION_USAGE_SECS`).
    pub usage: Duration,
    /// The request log (`CIQ_RETENTION_REQUEST_LOG_SECS`).
    pub request_log: Duration,
}

/// Default retention of the webhook delivery log: 7 days.
pub const DEFAULT_DELIVERY_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default time between two purges.
pub const DEFAULT_PURGE_EVERY: Duration = Duration::from_secs(600);

impl Default for Retention {
    fn default() -> Self {
        Self {
            idempotency: ciq_leads::idempotency::DEFAULT_RETENTION,
            purge_every: DEFAULT_PURGE_EVERY,
            deliveries: DEFAULT_DELIVERY_RETENTION,
            spam: ciq_leads::store::SPAM_RETENTION,
            usage: ciq_usage::retention::DEFAULT_USAGE_RETENTION,
            request_log: ciq_usage::retention::DEFAULT_LOG_RETENTION,
        }
    }
}

/// What one purge deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Purged {
    /// Idempotency keys past their retention.
    pub idempotency_keys: u64,
    /// Expired sessions.
    pub sessions: u64,
    /// Password links past their hour.
    pub reset_links: u64,
    /// CSV imports finished (or left as drafts) past their retention, with their
    /// failed rows.
    pub imports: u64,
    /// Finished webhook deliveries past their retention.
    pub deliveries: u64,
    /// Spam leads past their retention.
    pub spam: u64,
    /// Webhook endpoints disabled because the key that subscribed them expired.
    pub expired_keys_endpoints: u64,
    /// Usage minutes rolled up, buckets and request-log rows past their retention.
    pub usage: ciq_usage::retention::Purged,
    /// Records of drained spool entries past [`SPOOL_APPLIED_RETENTION`].
    pub spool_applied: u64,
}

/// How long the record of a drained spool entry is kept: it only has to outlive an
/// acknowledgement lost to a crash (the entry is claimed again within seconds).
pub const SPOOL_APPLIED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// One purge of everything past its time.
pub async fn purge_once(db: &Db, retention: Retention) -> Result<Purged, sea_orm::DbErr> {
    Ok(Purged {
        idempotency_keys: ciq_leads::idempotency::purge(db, retention.idempotency).await?,
        sessions: ciq_admin::sessions::purge_expired(db).await?,
        reset_links: ciq_admin::resets::purge_expired(db).await?,
        imports: ciq_imports::store::purge(db, ciq_imports::store::RETENTION).await?,
        deliveries: ciq_webhooks::delivery::purge(db, retention.deliveries).await?,
        spam: ciq_leads::store::purge_spam(db, retention.spam).await?,
        expired_keys_endpoints: ciq_admin::keys::disable_endpoints_of_expired_keys(db).await?,
        usage: ciq_usage::retention::purge(
            db,
            chrono::Utc::now(),
            retention.usage,
            retention.request_log,
        )
        .await?,
        spool_applied: ciq_leads::spooled::purge(db, SPOOL_APPLIED_RETENTION).await?,
    })
}

/// Purges every `retention.purge_every`, for ever, skipping turns while `breaker` is
/// open; a failure is logged once per run of failures and retried at the next turn.
pub async fn run_purge(db: Db, breaker: std::sync::Arc<ciq_store::Breaker>, retention: Retention) {
    let mut failing = false;
    loop {
        tokio::time::sleep(retention.purge_every).await;
        if breaker.is_open() {
            // Backs off while the store is gone: the breaker's probe finds out when it is back.
            continue;
        }
        match purge_once(&db, retention).await {
            Ok(purged) => {
                if failing {
                    tracing::info!("retention purge works again");
                }
                failing = false;
                tracing::debug!(?purged, "retention purge");
            }
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(error = %err, "retention purge failed; will retry");
            }
            Err(_) => {}
        }
    }
}
