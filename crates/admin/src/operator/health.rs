//! Liveness, readiness and the metrics exposition of one instance.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::state::OperatorState;
use super::tags::OperatorTags;

/// Liveness answer.
#[derive(Debug, Object)]
pub struct Alive {
    /// Always `ok`.
    pub status: String,
}

/// Readiness answer: the state of each dependency.
#[derive(Debug, Object)]
pub struct Readiness {
    /// `ready`, `unavailable`, or `starting` (the instance started while the database
    /// was unreachable and completes its start — the schema check — when it answers).
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    /// Where leads go: `ok` (the store), `spooling` (the store is unreachable and
    /// creates that say `Prefer: respond-async` wait in Redis's outage spool; the
    /// instance is ready) or `unreachable` (503 to every create).
    pub store: String,
    /// Leads waiting in the outage spool (0 without Redis), as last counted.
    pub spooled: u64,
    /// The read replica (`DATABASE_READ_URL`): `ok` (lists are read there), `lagging`
    /// (behind by more than the bound, or not streaming), `unreachable` (either way lists
    /// are read from the primary) or `not_configured`. Never makes the instance unready.
    pub database_replica: String,
    /// The limiter deciding now: `redis` (shared by every instance) or `in_process`.
    pub rate_limiter: String,
    /// Redis: `ok`, `unreachable` (degraded: limiting in-process until it returns),
    /// `partial` (a Redis Cluster with a master down: the buckets of its slots are
    /// limited in-process until it or its replica answers; the rest stay exact) or
    /// `not_configured`.
    pub redis: String,
    /// The Redis configured: `single` (one node), `cluster` (a Redis Cluster: reachable
    /// means every master answers) or `not_configured`.
    pub redis_mode: String,
    /// Whether the instance runs degraded (Redis configured but unreachable, on a
    /// cluster in part). A degraded instance still serves, so it is still ready.
    pub degraded: bool,
    /// The share of rate-limit buckets decided in-process for now, 0 to 1: 1 while one
    /// Redis node is unreachable; on a cluster, the share of slots whose master is down.
    pub degraded_slots_share: f64,
}

/// Readiness responses.
#[derive(Debug, ApiResponse)]
pub enum ReadyResponse {
    /// Ready to serve: the database answers, or the outage spool takes creates.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready: the database does not answer, and no spool takes creates.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

/// Health endpoints.
pub struct HealthApi;

#[OpenApi]
impl HealthApi {
    /// Liveness
    ///
    /// 200 while the process serves HTTP.
    #[oai(
        path = "/healthz",
        method = "get",
        tag = "OperatorTags::Health",
        operation_id = "healthz"
    )]
    async fn healthz(&self) -> Json<Alive> {
        Json(Alive {
            status: "ok".into(),
        })
    }

    /// Readiness
    ///
    /// 200 when the database answers a ping, or when it does not but the outage spool
    /// takes creates (`store: "spooling"`); 503 otherwise. Also says which rate
    /// limiter decides and whether Redis is reachable (unreachable Redis = degraded
    /// but still ready: requests are limited in-process).
    #[oai(
        path = "/readyz",
        method = "get",
        tag = "OperatorTags::Health",
        operation_id = "readyz"
    )]
    async fn readyz(&self, state: Data<&Arc<OperatorState>>) -> ReadyResponse {
        // An open breaker already knows; a ping that hangs is given up on its bound.
        let db_ok = matches!(state.breaker.guard(state.db.ping()).await, Ok(Ok(())));
        // One reading of the share, so the fields below agree with each other.
        let degraded_share = state.limiter.degraded_share();
        let degraded = degraded_share > 0.0;
        let redis = match state.limiter.redis_mode() {
            None => "not_configured",
            Some(_) if !degraded => "ok",
            Some(_) if degraded_share >= 1.0 => "unreachable",
            Some(_) => "partial",
        };
        // An instance that started during an outage verifies no key until its start
        // completes: not ready, whatever the spool could take.
        let starting = state.breaker.is_starting();
        // The store is gone but leads still have somewhere to go: ready.
        let spooling = !starting
            && !db_ok
            && redis != "unreachable"
            && state.spool.as_ref().is_some_and(|spool| spool.accepting());
        let ready = db_ok || spooling;
        let store = match (db_ok, spooling) {
            (true, _) => "ok",
            (false, true) => "spooling",
            (false, false) => "unreachable",
        };
        let body = Readiness {
            status: match (ready, starting) {
                (true, _) => "ready",
                (false, true) => "starting",
                (false, false) => "unavailable",
            }
            .into(),
            database: if db_ok { "ok" } else { "unreachable" }.into(),
            store: store.into(),
            spooled: state.spool.as_ref().map_or(0, |spool| spool.depth()),
            database_replica: state.reads.replica_state().as_str().into(),
            rate_limiter: match redis {
                "unreachable" => "in_process",
                "not_configured" => state.limiter.backend(),
                _ => "redis",
            }
            .into(),
            redis: redis.into(),
            redis_mode: state
                .limiter
                .redis_mode()
                .map_or("not_configured", |mode| mode.as_str())
                .into(),
            degraded,
            // Four decimals: a slot is 1/16 384.
            degraded_slots_share: (degraded_share * 10_000.0).round() / 10_000.0,
        };
        if ready {
            ReadyResponse::Ready(Json(body))
        } else {
            ReadyResponse::NotReady(Json(body))
        }
    }

    /// Prometheus metrics
    ///
    /// Text exposition format: request counts and latency by route, rate-limit
    /// decisions, the degraded flag, key-cache hits and argon2 verifications.
    #[oai(
        path = "/metrics",
        method = "get",
        tag = "OperatorTags::Health",
        operation_id = "metrics"
    )]
    async fn metrics(&self, state: Data<&Arc<OperatorState>>) -> PlainText<String> {
        PlainText(render_metrics(&state))
    }
}

/// The recorder's metrics followed by what is read from this instance's state.
pub fn render_metrics(state: &OperatorState) -> String {
    let (pool_size, pool_idle) = pool_usage(&state.db);
    ciq_http::metrics::render(&[
        (
            "ciq_rate_limiter_degraded",
            "gauge",
            "1 while Redis is configured but unreachable (limiting in-process).",
            u64::from(state.limiter.degraded()),
        ),
        (
            "ciq_rate_limiter_degraded_slots",
            "gauge",
            "Redis Cluster slots (of 16 384) whose master is down, their buckets limited \
             in-process; 16 384 while a single Redis is unreachable.",
            (state.limiter.degraded_share() * ciq_redis::SLOTS as f64).round() as u64,
        ),
        (
            "ciq_redis_cluster",
            "gauge",
            "1 when REDIS_URL names a Redis Cluster (its seed nodes), 0 otherwise.",
            u64::from(state.limiter.redis_mode() == Some(ciq_redis::RedisMode::Cluster)),
        ),
        (
            "ciq_db_replica_in_use",
            "gauge",
            "1 while lists are read from the read replica (DATABASE_READ_URL), else 0.",
            u64::from(state.reads.replica_state() == ciq_store::ReplicaState::Ok),
        ),
        (
            "ciq_key_cache_hits_total",
            "counter",
            "Key verifications answered from the in-memory cache.",
            state.verifier.cache_hits(),
        ),
        (
            "ciq_argon2_verifications_total",
            "counter",
            "argon2id verifications run (cache misses).",
            state.verifier.argon2_runs(),
        ),
        (
            "ciq_runtime_worker_threads",
            "gauge",
            "Worker threads of the async runtime serving this instance (CIQ_WORKER_THREADS).",
            tokio::runtime::Handle::try_current()
                .map_or(0, |runtime| runtime.metrics().num_workers() as u64),
        ),
        (
            "ciq_db_pool_connections",
            "gauge",
            "Open connections in the database pool.",
            pool_size,
        ),
        (
            "ciq_db_pool_idle_connections",
            "gauge",
            "Idle connections in the database pool (open minus in use).",
            pool_idle,
        ),
    ])
}

/// Open and idle connections of the pool (the connections kept between statements,
/// checked out of sqlx's pool, count as idle).
fn pool_usage(db: &ciq_store::Db) -> (u64, u64) {
    match db.connection().get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => {
            let pool = db.connection().get_postgres_connection_pool();
            let idle = pool.num_idle() + db.kept_idle();
            (u64::from(pool.size()), idle as u64)
        }
        sea_orm::DatabaseBackend::Sqlite => {
            let pool = db.connection().get_sqlite_connection_pool();
            (u64::from(pool.size()), pool.num_idle() as u64)
        }
        _ => (0, 0),
    }
}
