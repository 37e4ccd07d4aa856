//! Liveness and readiness.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::ApiTags;
use crate::state::AppState;

/// Liveness answer.
#[derive(Debug, Object)]
pub struct Alive {
    /// Always `ok`.
    pub status: String,
}

/// Readiness answer: the state of each dependency.
#[derive(Debug, Object)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    /// The limiter backend in use: `in_process` or `redis`.
    pub rate_limiter: String,
}

/// Readiness responses.
#[derive(Debug, ApiResponse)]
pub enum ReadyResponse {
    /// Ready to serve: the database answers.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// Not ready: the database does not answer.
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
        tag = "ApiTags::Health",
        operation_id = "healthz"
    )]
    async fn healthz(&self) -> Json<Alive> {
        Json(Alive {
            status: "ok".into(),
        })
    }

    /// Readiness
    ///
    /// 200 when the database answers a ping, 503 otherwise; also names the rate
    /// limiter backend in use.
    #[oai(
        path = "/readyz",
        method = "get",
        tag = "ApiTags::Health",
        operation_id = "readyz"
    )]
    async fn readyz(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        let db_ok = state.db.ping().await.is_ok();
        let body = Readiness {
            status: if db_ok { "ready" } else { "unavailable" }.into(),
            database: if db_ok { "ok" } else { "unreachable" }.into(),
            rate_limiter: state.limiter.backend().into(),
        };
        if db_ok {
            ReadyResponse::Ready(Json(body))
        } else {
            ReadyResponse::NotReady(Json(body))
        }
    }
}
